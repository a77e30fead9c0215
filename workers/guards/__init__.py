"""Guard backends (GUARD_BACKEND): keywords, a transformers model, an OpenAI-compatible server.

`build_guard(settings)` makes the configured one (None when GUARD_BACKEND=off); nothing heavy
happens before its `load()`. The contract and the exception tree are in `workers.guards.base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.guards.base import (
    BaseGuard,
    GuardConfigError,
    GuardError,
    GuardRequest,
    GuardUnavailable,
    GuardVerdict,
)
from workers.guards.formats import format_named

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "BaseGuard",
    "GuardConfigError",
    "GuardError",
    "GuardRequest",
    "GuardUnavailable",
    "GuardVerdict",
    "build_guard",
]


def build_guard(settings: Settings) -> BaseGuard | None:
    s = settings
    if s.guard_backend == "off":
        return None
    guard_format = format_named(s.effective_guard_format)
    if s.guard_backend == "keywords":
        from workers.guards.keywords import KeywordsGuard

        assert s.guard_keywords_file
        return KeywordsGuard(s.guard_keywords_file)
    if s.guard_backend == "openai":
        from workers.guards.openai import OpenAIGuard

        assert s.guard_base_url
        return OpenAIGuard(s.guard_base_url, s.effective_guard_model, guard_format,
                           s.guard_api_key.get_secret_value() if s.guard_api_key else None,
                           timeout=s.guard_timeout_seconds, max_image_pixels=s.max_image_pixels)
    from workers.guards.transformers import TransformersGuard

    return TransformersGuard(s.guard_model_id, guard_format, device=s.engine_device,
                             max_image_pixels=s.max_image_pixels,
                             max_batch=s.engine_max_batch_size,
                             max_wait=s.engine_max_wait_ms / 1000,
                             timeout=s.guard_timeout_seconds)
