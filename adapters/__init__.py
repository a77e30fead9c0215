"""Platform adapters: one module a platform, each registering itself in `adapters.base`."""

from adapters import line, local, telegram, whatsapp  # noqa: F401
