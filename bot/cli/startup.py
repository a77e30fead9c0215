"""What `dev`, `api` and `worker` say when they start.

`summary(settings, role, ...)` lists, in a few lines: each platform (on, or which settings turn
it on), the local chats, the model (backend, id, whether it is loaded), the admin console (its
URL, or why it is off) and the conversation log's database; every URL through
`bot.kernel.logs.redact_url`, so no credential inside one is printed. Why a model would not load
is explained by `workers.models.failure.explain_model_failure`.
"""

from __future__ import annotations

from bot.kernel.logs import redact_url
from bot.kernel.prompt import purpose_warning
from bot.kernel.settings import Settings, is_loopback

_PLATFORM_SETTINGS = {
    "telegram": "TELEGRAM_BOT_TOKEN (a token from @BotFather; with TELEGRAM_POLLING=true no "
                "public URL is needed)",
    "line": "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN",
    "whatsapp": "WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET and WHATSAPP_PHONE_NUMBER_ID",
}


def summary(settings: Settings, role: str, *, host: str | None = None, port: int | None = None,
            polling: bool | None = None, web_chat: bool | None = None,
            redis_note: str | None = None, model_state: str | None = None) -> str:
    """The startup lines of `sealion-bot <role>`."""
    polling = settings.telegram_polling if polling is None else polling
    web_chat = settings.web_chat if web_chat is None else web_chat
    shown = host if host not in (None, "0.0.0.0", "::") else "127.0.0.1"
    base = f"http://{shown}:{port}" if port else None
    lines = [f"sealion-bot {role}"]
    if role != "worker":
        enabled = {"telegram": settings.telegram_enabled, "line": settings.line_enabled,
                   "whatsapp": settings.whatsapp_enabled}
        for name, on in enabled.items():
            if not on:
                lines.append(f"  {name:<10} off — set {_PLATFORM_SETTINGS[name]}")
            elif name == "telegram" and polling and role == "dev":
                lines.append(f"  {name:<10} on, polling (getUpdates; no public URL needed)")
            elif name == "telegram" and polling:
                lines.append(f"  {name:<10} on, polling: run `sealion-bot poll` beside the API")
            elif name == "telegram" and role == "dev" and host and is_loopback(host):
                lines.append(f"  {name:<10} on, webhook POST /webhooks/{name} (needs a public "
                             "HTTPS URL; TELEGRAM_POLLING=true needs none)")
            else:
                lines.append(f"  {name:<10} on, webhook POST /webhooks/{name}")
        if web_chat and base:
            lines.append(f"  {'web chat':<10} {base}/chat")
        elif web_chat:
            lines.append(f"  {'web chat':<10} on, at /chat")
        else:
            lines.append(f"  {'web chat':<10} off — set WEB_CHAT=true")
        lines.append(f"  {'terminal':<10} sealion-bot chat")
        warning = purpose_warning(settings)
        if warning:
            lines.append(f"  {'warning':<10} {warning}")
    lines.append(f"  {'model':<10} {_model_line(settings, role, model_state)}")
    if role != "worker":
        lines.append(f"  {'admin':<10} {_admin_line(settings, base, host)}")
    lines.append(f"  {'log':<10} {redact_url(settings.database_url)}")
    if redis_note:
        lines.append(f"  {'redis':<10} {redis_note}")
    else:
        lines.append(f"  {'redis':<10} {redact_url(settings.redis_display)}")
    return "\n".join(lines)


def _model_line(settings: Settings, role: str, state: str | None) -> str:
    if settings.model_backend == "openai":
        what = (f"openai-compatible server {redact_url(settings.openai_base_url or '')}, "
                f"model {settings.served_model}")
    else:
        what = f"transformers, {settings.model_id}"
    if state is not None:
        return f"{what} — {state}"
    if role == "api":
        return f"{what} — loaded by the workers (GET /readyz says whether it is ready)"
    return f"{what} — loading (this can take minutes; 'model ready' follows)"


def _admin_line(settings: Settings, base: str | None, host: str | None) -> str:
    password = settings.admin_password.get_secret_value() if settings.admin_password else ""
    if not password:
        return "off — set ADMIN_PASSWORD to review conversations at /admin"
    from bot.admin.security import MIN_PASSWORD_LENGTH

    if len(password) < MIN_PASSWORD_LENGTH:
        return f"off — ADMIN_PASSWORD needs at least {MIN_PASSWORD_LENGTH} characters"
    where = f"{base}/admin" if base else "/admin"
    if host and not is_loopback(host):
        where += " (serve it behind HTTPS)"
    return where
