"""Platform adapters: one module a platform, each registering itself in `adapters.base`."""

from adapters import telegram  # noqa: F401
