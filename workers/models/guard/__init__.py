"""The guard model (GUARD_BACKEND): keywords, a transformers model, an OpenAI-compatible server.

The contract and the exception tree are in `workers.models.guard.base`; how each guard model is
asked and read in `formats`. The composition root builds the configured guard (`bot.composition`);
nothing heavy happens before its `load()`.
"""

from __future__ import annotations

from workers.models.guard.base import (
    BaseGuard,
    GuardConfigError,
    GuardError,
    GuardRequest,
    GuardUnavailable,
    GuardVerdict,
)

__all__ = [
    "BaseGuard",
    "GuardConfigError",
    "GuardError",
    "GuardRequest",
    "GuardUnavailable",
    "GuardVerdict",
]
