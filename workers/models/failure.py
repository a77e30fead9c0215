"""The paragraph for a model that will not load: what was tried, the likely cause (offline, a
wrong id, a missing folder, no torch, out of memory, a server that does not answer), and the
three ways to get a model. It goes to the logs and to /readyz: URLs in it are redacted, and so
is every configured secret that the error's own text may quote.

`explain_host_failure` words the failure of any host: the chat model's paragraph
(`explain_model_failure`), or a line for the speech and guard models (what was tried, the
error, and what the bot does meanwhile).
"""

from __future__ import annotations

from pathlib import Path

from bot.kernel.logs import RedactSecrets, redact_url
from bot.kernel.settings import Settings
from workers.models.host import HostKind

HOSTED_API = "https://api.sea-lion.ai/v1"


def explain_host_failure(settings: Settings, kind: HostKind, exc: BaseException) -> str:
    """Why the `kind` host cannot serve, for the logs and /readyz (secrets and URLs redacted)."""
    if kind is HostKind.CHAT:
        return explain_model_failure(settings, exc)
    detail = RedactSecrets(settings).redact(f"{type(exc).__name__}: {_first_line(exc)}")
    if kind is HostKind.SPEECH:
        if settings.effective_asr_backend == "openai":
            tried = (f"The speech model could not be reached: the transcription server at "
                     f"{redact_url(settings.asr_base_url or '')} ({detail}).")
        else:
            tried = (f"The speech model could not be loaded: ASR_MODEL_ID="
                     f"{settings.asr_model_id} with transformers ({detail}).")
        return f"{tried} Until it can, voice notes get a short apology."
    if settings.guard_backend == "openai":
        tried = (f"The guard could not be reached: the guard server at "
                 f"{redact_url(settings.guard_base_url or '')} ({detail}).")
    elif settings.guard_backend == "keywords":
        tried = f"The guard could not read GUARD_KEYWORDS_FILE ({detail})."
    else:
        tried = (f"The guard could not be loaded: GUARD_MODEL_ID={settings.guard_model_id} "
                 f"with transformers ({detail}).")
    return f"{tried} Until it can, the checks follow GUARD_FAIL={settings.guard_fail}."


def explain_model_failure(settings: Settings, exc: BaseException) -> str:
    """One paragraph: what was tried, why it likely failed, and what to do."""
    # The error's text may quote a URL with its credentials (an engine names its server).
    detail = RedactSecrets(settings).redact(f"{type(exc).__name__}: {_first_line(exc)}")
    text = str(exc).lower()
    if settings.model_backend == "openai":
        tried = (f"The model could not be reached: the worker asked the OpenAI-compatible "
                 f"server at {redact_url(settings.openai_base_url or '')} for model "
                 f"{settings.served_model!r} "
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
            "OPENAI_MODEL=a model that `GET /v1/models` lists (see docs/getting-started.md).")


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
