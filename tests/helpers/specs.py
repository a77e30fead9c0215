"""Where the vendored platform specs live (``tests/specs/``, see its README)."""

from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"
TELEGRAM_BOT_API = SPECS / "telegram" / "bot-api.json"
LINE_SPECS = SPECS / "line"
WHATSAPP_CLOUD_API = SPECS / "whatsapp" / "business-messaging-api_v23.0.yaml"
COMPOSE_SCHEMA = SPECS / "compose" / "compose-spec.json"
KEDA_CRDS = SPECS / "keda"
