"""What `dev`, `api` and `worker` say when they start, and the paragraph for a model that won't load.

`summary(settings, role, ...)` lists, in a few lines: each platform (on, or which settings turn
it on), the local chats, the model (backend, id, whether it is loaded), the admin console (its
URL, or why it is off) and the conversation log's database with its password hidden.

`explain_model_failure(settings, exc)` turns a load error into one paragraph a person can act
on: what was tried, the likely cause (offline, a wrong id, a missing folder, no torch, out of
memory, a server that does not answer), and the three ways to get a model.
"""

from __future__ import annotations

from pathlib import Path

from bot.settings import Settings, is_loopback

HOSTED_API = "https://api.sea-lion.ai/v1"
_PLATFORM_SETTINGS = {
    "telegram": "TELEGRAM_BOT_TOKEN (a token from @BotFather; with TELEGRAM_POLLING=true no "
                "public URL is needed)",
    "line": "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN",
    "whatsapp": "WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET and WHATSAPP_PHONE_NUMBER_ID",
}


def model_name(settings: Settings) -> str:
    if settings.model_backend == "openai":
        return settings.openai_model or settings.model_id
    return settings.model_id


def _redact(url: str) -> str:
    """The URL with its password hidden (the conversation log's own rule)."""
    from storage.log import redact_url

    return redact_url(url)


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
    lines.append(f"  {'model':<10} {_model_line(settings, role, model_state)}")
    if role != "worker":
        lines.append(f"  {'admin':<10} {_admin_line(settings, base, host)}")
    lines.append(f"  {'log':<10} {_redact(settings.database_url)}")
    if redis_note:
        lines.append(f"  {'redis':<10} {redis_note}")
    else:
        lines.append(f"  {'redis':<10} {_redact(settings.effective_redis_url)}")
    return "\n".join(lines)


def _model_line(settings: Settings, role: str, state: str | None) -> str:
    if settings.model_backend == "openai":
        what = f"openai-compatible server {settings.openai_base_url}, model {model_name(settings)}"
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


def explain_model_failure(settings: Settings, exc: BaseException) -> str:
    """One paragraph: what was tried, why it likely failed, and what to do."""
    detail = f"{type(exc).__name__}: {_first_line(exc)}"
    text = str(exc).lower()
    if settings.model_backend == "openai":
        tried = (f"The model could not be reached: the worker asked the OpenAI-compatible "
                 f"server at {settings.openai_base_url} for model {model_name(settings)!r} "
                 f"({detail}).")
        cause = ("Check that the server is running and reachable from this machine, that "
                 "OPENAI_MODEL names a model it serves (GET /v1/models lists them) and, for a "
                 "hosted API, that OPENAI_API_KEY is right.")
        return " ".join([tried, cause, _ways(), _until()])
    model = settings.model_id
    looks_local = model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()
    tried = f"The model could not be loaded: the worker tried MODEL_ID={model} with transformers"
    chain = _chain(exc)
    if any(isinstance(e, ModuleNotFoundError) for e in chain) or "no module named" in text:
        cause = ("This installation has no model stack: install it with "
                 "`pip install -e '.[gpu]'`, or use a model server instead.")
    elif any(isinstance(e, ImportError) for e in chain):
        cause = ("The installed transformers could not import what this model needs: "
                 "reinstall the model stack with `pip install -e '.[gpu]'`.")
    elif "out of memory" in text:
        cause = ("The model does not fit in this machine's memory: try a smaller checkpoint, "
                 "ENGINE_DEVICE=cpu, or a model server.")
    elif looks_local and not Path(model).expanduser().exists():
        cause = f"There is no folder {model} on this machine."
    elif looks_local:
        cause = (f"The folder {model} exists but is not a checkpoint transformers can read "
                 "(it needs config.json, the weights and the processor files).")
    elif _offline(text):
        cause = ("This machine could not download it: it looks offline (or HF_HUB_OFFLINE is "
                 "set) and the model is not in the Hugging Face cache.")
    elif _unknown_id(text):
        cause = (f"Hugging Face has no model {model!r} that this machine may read: check the "
                 "id (or log in with `hf auth login` if the model is gated).")
    else:
        cause = "The id may be wrong, or this machine offline."
    return " ".join([f"{tried} ({detail}).", cause, _ways(), _until()])


def _ways() -> str:
    return ("To fix it, point MODEL_ID at a local checkpoint folder (downloaded once with "
            "`hf download aisingapore/Qwen-SEA-LION-v4-4B-VL --local-dir ./sea-lion`), or set "
            "MODEL_BACKEND=openai with OPENAI_BASE_URL=http://HOST:8000/v1 of a vLLM server "
            f"(`vllm serve MODEL`), or use AI Singapore's hosted SEA-LION API: "
            f"MODEL_BACKEND=openai OPENAI_BASE_URL={HOSTED_API} OPENAI_API_KEY=your key "
            "OPENAI_MODEL=a model that `GET /v1/models` lists (see the README).")


def _until() -> str:
    return "Until then GET /readyz answers 503 with this reason and messages get a short apology."


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (`raise ... from`, or raised while handling)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 300 else first[:297] + "..."


def _offline(text: str) -> bool:
    return any(s in text for s in (
        "offline", "couldn't connect", "could not connect", "connection error",
        "max retries exceeded", "name or service not known", "temporary failure in name",
        "network is unreachable", "cannot find the requested files in the local cache",
        "localentrynotfound", "connectionerror", "failed to resolve"))


def _unknown_id(text: str) -> bool:
    return any(s in text for s in (
        "is not a valid model identifier", "repository not found", "401", "404",
        "gated repo", "not a local folder"))
