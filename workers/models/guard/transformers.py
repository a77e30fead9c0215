"""A guard model loaded in the inference worker, beside the chat model (GUARD_BACKEND=transformers).

Qwen-SEA-Guard-4B/8B-2602 are Qwen3-VL checkpoints, so the chat model's own host
(`workers.models.chat.transformers.TransformersEngine`) loads them, and its batcher (the one
batcher, `workers.models.batching`) gathers the checks of all the worker's threads into one
``generate`` call, as it does for answers. Decoding is greedy (the model card's temperature 0)
and a few tokens long: a label is all we read.

When the checkpoint ships a model card (README.md) that does not show the prompt format this
module sends, a warning says so at load time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from workers.models.guard.base import (
    BaseGuard,
    GuardError,
    GuardRequest,
    GuardUnavailable,
    GuardVerdict,
)
from workers.models.guard.formats import GuardFormat, SeaGuardFormat

log = logging.getLogger(__name__)

__all__ = ["TransformersGuard"]


class TransformersGuard(BaseGuard):
    name = "transformers"

    def __init__(self, model_id: str, guard_format: GuardFormat, *, device: str | None = None,
                 max_image_pixels: int = 1024 * 1024, max_batch: int = 16,
                 max_wait: float = 0.005, timeout: float = 60.0) -> None:
        self.model_id = model_id
        self.format = guard_format
        self.device = device
        self.max_image_pixels = max_image_pixels
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.timeout = timeout
        self.engine: Any = None  # the TransformersEngine (a chat host), once loaded

    def _load(self) -> None:
        from workers.models.chat.base import EngineError
        from workers.models.chat.transformers import TransformersEngine

        engine = TransformersEngine(self.model_id, device=self.device,
                                    max_image_pixels=self.max_image_pixels,
                                    max_batch=self.max_batch, max_wait=self.max_wait)
        try:
            engine.load()
        except EngineError as exc:
            raise GuardUnavailable(f"guard model did not load: {exc}") from None
        config = engine.model.generation_config
        config.do_sample = False
        for name in ("temperature", "top_p", "top_k", "min_new_tokens"):
            if hasattr(config, name):
                setattr(config, name, None)
        self._check_card()
        self.engine = engine

    def _check_card(self) -> None:
        if not isinstance(self.format, SeaGuardFormat):
            return
        readme = _model_card(self.model_id)
        if readme is not None and not self.format.card_mentions_prompt(readme):
            log.warning("the model card of %s does not show the SEA-Guard prompt format "
                        "(Human user:/AI assistant:); check GUARD_FORMAT", self.model_id)

    def _request(self, request: GuardRequest) -> Any:
        from workers.models.chat.base import ChatTurn, GenerationRequest

        turns = tuple(ChatTurn(role=role, text=text, images=images)  # type: ignore[arg-type]
                      for role, text, images in self.format.turns(request))
        return GenerationRequest(system="", turns=turns,
                                 max_new_tokens=self.format.max_new_tokens)

    def check(self, request: GuardRequest) -> GuardVerdict:
        [verdict] = self.check_many([request])
        if isinstance(verdict, GuardError):
            raise verdict
        return verdict

    def check_many(self, requests: Sequence[GuardRequest]) -> list[GuardVerdict | GuardError]:
        """All `requests` handed to the batcher at once, so they share its batches (the windows
        of a long text, `check_whole`, cost ``ceil(n / max_batch)`` generate calls). They get
        GUARD_TIMEOUT_SECONDS for each batch they fill."""
        self.load()
        started = time.perf_counter()
        futures = [self.engine.submit(self._request(request)) for request in requests]
        deadline = started + self.timeout * math.ceil(len(futures) / self.max_batch)
        out: list[GuardVerdict | GuardError] = []
        for future in futures:
            try:
                result = future.result(max(0.0, deadline - time.perf_counter()))
            except FutureTimeout:
                out.append(GuardUnavailable(f"guard model took over {self.timeout:g}s"))
                continue
            if result.error:
                out.append(GuardUnavailable(f"guard model failed: {result.error}"))
                continue
            out.append(self.format.verdict(result.text, time.perf_counter() - started))
        return out

    def details(self) -> dict[str, Any]:
        info: dict[str, Any] = {"model": self.model_id, "format": self.format.name}
        if self.engine is not None:
            engine = self.engine.details()
            info.update({k: v for k, v in engine.items() if k != "model"})
        return info


def _model_card(model_id: str) -> str | None:
    """The checkpoint's README.md: from its folder, or the Hugging Face cache (no download)."""
    local = Path(model_id) / "README.md"
    try:
        if local.is_file():
            return local.read_text(encoding="utf-8", errors="replace")
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_id, "README.md")
        if isinstance(cached, str):
            return Path(cached).read_text(encoding="utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - a card we cannot read is no reason to stop
        log.debug("no model card for %s", model_id, exc_info=True)
    return None
