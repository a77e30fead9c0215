"""A guard model loaded in the inference worker, beside the chat model (GUARD_BACKEND=transformers).

Qwen-SEA-Guard-4B/8B-2602 are Qwen3-VL checkpoints, so the chat model's own `TransformersEngine`
loads them, and a `BatchingEngine` of their own gathers the checks of all the worker's threads
into one ``generate`` call, as it does for answers. Decoding is greedy (the model card's
temperature 0) and a few tokens long: a label is all we read.

When the checkpoint ships a model card (README.md) that does not show the prompt format this
module sends, a warning says so at load time.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from workers.guards.base import BaseGuard, GuardRequest, GuardUnavailable, GuardVerdict
from workers.guards.formats import GuardFormat, SeaGuardFormat

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
        self.engine: Any = None  # the TransformersEngine
        self.batcher: Any = None  # the BatchingEngine in front of it
        self._lock = threading.Lock()
        self._failure: str | None = None

    def load(self) -> None:
        with self._lock:
            if self.batcher is not None:
                return
            from workers.engines.base import EngineError
            from workers.engines.batching import BatchingEngine
            from workers.engines.transformers import TransformersEngine

            engine = TransformersEngine(self.model_id, device=self.device,
                                        max_image_pixels=self.max_image_pixels)
            try:
                engine.load()
            except EngineError as exc:
                self._failure = str(exc)
                raise GuardUnavailable(f"guard model did not load: {exc}") from None
            config = engine.model.generation_config
            config.do_sample = False
            for name in ("temperature", "top_p", "top_k", "min_new_tokens"):
                if hasattr(config, name):
                    setattr(config, name, None)
            self._check_card()
            self.engine = engine
            self.batcher = BatchingEngine(engine, max_batch=self.max_batch,
                                          max_wait=self.max_wait)

    def _check_card(self) -> None:
        if not isinstance(self.format, SeaGuardFormat):
            return
        readme = _model_card(self.model_id)
        if readme is not None and not self.format.card_mentions_prompt(readme):
            log.warning("the model card of %s does not show the SEA-Guard prompt format "
                        "(Human user:/AI assistant:); check GUARD_FORMAT", self.model_id)

    def _request(self, request: GuardRequest) -> Any:
        from workers.engines.base import ChatTurn, GenerationRequest

        turns = tuple(ChatTurn(role=role, text=text, images=images)  # type: ignore[arg-type]
                      for role, text, images in self.format.turns(request))
        return GenerationRequest(system="", turns=turns,
                                 max_new_tokens=self.format.max_new_tokens)

    def check(self, request: GuardRequest) -> GuardVerdict:
        self.load()
        started = time.perf_counter()
        try:
            result = self.batcher.generate(self._request(request), timeout=self.timeout)
        except TimeoutError:
            raise GuardUnavailable(f"guard model took over {self.timeout:g}s") from None
        if result.error:
            raise GuardUnavailable(f"guard model failed: {result.error}")
        return self.format.verdict(result.text, time.perf_counter() - started)

    def health(self) -> dict:
        info: dict[str, Any] = {"name": self.name, "model_id": self.model_id,
                                "format": self.format.name, "loaded": self.batcher is not None}
        if self._failure:
            info["error"] = self._failure
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
