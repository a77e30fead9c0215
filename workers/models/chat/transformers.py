"""The chat model in process: Hugging Face transformers, for the SEA-LION v4 vision-language models.

Serves any checkpoint that ``AutoProcessor`` + ``AutoModelForImageTextToText`` load with a chat template:
Qwen-SEA-LION-v4-4B/8B-VL (Qwen3-VL) and Gemma-SEA-LION-v4-4B/27B-VL (Gemma 3). A batch of requests is
rendered with the checkpoint's own chat template, left-padded, and answered by one ``model.generate`` call
under the checkpoint's own generation config (only ``max_new_tokens`` varies per request).

The requests of all the worker's threads (``submit``/``generate``) meet in the one batcher
(`workers.models.batching.Batcher`): each request's CPU work (`decode`: checks, image decoding)
runs in its own thread, and the batcher's thread generates them together (`generate_decoded`).
The guard model in process (`workers.models.guard.transformers`) is one of these hosts too.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from workers.images import load_image
from workers.models.batching import Batcher
from workers.models.chat.base import (
    BaseEngine,
    EngineError,
    EngineOverloaded,
    GenerationRequest,
    GenerationResult,
    normalize_turns,
)
from workers.models.control_tokens import neutralise_control_tokens
from workers.models.host import missing_checkpoint, quiet_transformers

logger = logging.getLogger(__name__)

__all__ = ["TransformersEngine"]

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


@dataclass
class _Prepared:
    """A request turned into the processor's chat format."""

    index: int
    messages: list[dict[str, Any]]
    max_new_tokens: int
    on_partial: Any = None


def _error_result(exc: BaseException) -> GenerationResult:
    message = str(exc) or repr(exc)
    return GenerationResult(text="", error=f"{type(exc).__name__}: {message}")


class _PerRowLimit:
    """Stopping criterion: row i is done once it has ``limits[i]`` new tokens (one generate, many limits)."""

    def __init__(self, prompt_length: int, limits):
        self.prompt_length = prompt_length
        self.limits = limits

    def __call__(self, input_ids, scores, **kwargs):
        return (input_ids.shape[1] - self.prompt_length) >= self.limits


class _Partials:
    """A never-stopping "stopping criterion" that shows each streaming row its answer so far,
    every `every` tokens: one batched generate, many streams."""

    def __init__(self, prompt_length: int, rows: dict[int, Any], tokenizer: Any,
                 eos_ids: set[int], every: int = 8) -> None:
        self.prompt_length, self.rows, self.tokenizer = prompt_length, rows, tokenizer
        self.eos_ids, self.every = eos_ids, every

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids.shape[1] - self.prompt_length
        if generated and generated % self.every == 0:
            for row, callback in self.rows.items():
                tokens = input_ids[row, self.prompt_length:].tolist()
                stop = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
                text = self.tokenizer.decode(tokens[:stop], skip_special_tokens=True).strip()
                try:
                    callback(text)
                except Exception:  # a viewer's failure must not stop the generation
                    logger.debug("partial callback failed", exc_info=True)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class TransformersEngine(BaseEngine):
    name = "transformers"

    def __init__(
        self,
        model_id: str,
        processor_id: str | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_image_pixels: int = 1024 * 1024,
        max_context_tokens: int | None = None,
        max_batch: int = 16,
        max_wait: float = 0.005,
    ) -> None:
        """Record settings only. ``max_batch`` requests at most are generated together, those
        that arrive within ``max_wait`` seconds of the first (`workers.models.batching`)."""
        if dtype != "auto" and dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use 'auto' or one of {sorted(_DTYPES)}")
        self.model_id = str(model_id)
        self.processor_id = str(processor_id) if processor_id else self.model_id
        self.requested_device = device
        self.requested_dtype = dtype
        self.max_image_pixels = max_image_pixels
        #: Prompt plus answer must fit: the oldest turns go until the prompt, counted with the
        #: checkpoint's own processor (images included), leaves room for max_new_tokens.
        self.max_context_tokens = max_context_tokens
        self.model: Any = None
        self.processor: Any = None
        self.device: str | None = None
        self.dtype: Any = None
        self.attn_implementation: str | None = None
        self._eos_ids: set[int] = set()
        self._pad_id: int | None = None
        #: Held while the model generates (one batch at a time, whoever calls).
        self._lock = threading.RLock()
        self.batcher: Batcher[GenerationRequest, GenerationResult] = Batcher(
            self._generate_queued, prepare=self._decode_or_error, max_batch=max_batch,
            max_wait=max_wait, name="chat-batcher")

    # ------------------------------------------------------------------ loading

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._load_model()
        except EngineError:
            raise
        except Exception as exc:
            # The worker explains the failure in one paragraph; the traceback is for DEBUG.
            logger.debug("loading %s failed", self.model_id, exc_info=True)
            raise EngineError(f"cannot load {self.model_id}: {type(exc).__name__}: {exc}") from exc
        logger.info(
            "loaded %s on %s (%s, attention %s) in %.1fs",
            self.model_id,
            self.device,
            str(self.dtype).replace("torch.", ""),
            self.attn_implementation,
            time.perf_counter() - started,
        )

    def _load_model(self) -> None:
        if (missing := missing_checkpoint(self.model_id)) is not None:
            raise EngineError(f"cannot load {self.model_id}: {missing}")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        quiet_transformers()
        device = self.requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_cuda = device.startswith("cuda")
        if self.requested_dtype == "auto":
            dtype = torch.bfloat16 if on_cuda else torch.float32
        else:
            dtype = getattr(torch, _DTYPES[self.requested_dtype])

        processor = AutoProcessor.from_pretrained(self.processor_id)
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None or not getattr(processor, "chat_template", None):
            raise EngineError(f"{self.processor_id}: processor has no tokenizer or no chat template")
        tokenizer.padding_side = "left"

        kwargs: dict[str, Any] = {"dtype": dtype}
        if on_cuda:
            kwargs["device_map"] = "auto" if device == "cuda" else {"": device}
            attn = "flash_attention_2" if _flash_attention_available() else "sdpa"
        else:
            attn = None  # transformers' default (sdpa where supported)
        if attn:
            kwargs["attn_implementation"] = attn
        model: Any
        try:
            model = AutoModelForImageTextToText.from_pretrained(self.model_id, **kwargs)
        except (ImportError, ValueError) as exc:
            if attn != "flash_attention_2":
                raise
            logger.warning("flash_attention_2 unusable for %s (%s); using sdpa", self.model_id, exc)
            kwargs["attn_implementation"] = "sdpa"
            model = AutoModelForImageTextToText.from_pretrained(self.model_id, **kwargs)
        if not on_cuda:
            model.to(device)
        model.eval()

        generation_config = model.generation_config
        eos = generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else []))
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        pad_id = generation_config.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids, default=None)

        self.processor = processor
        self.model = model
        self.device = str(model.device)
        self.dtype = model.dtype
        self.attn_implementation = getattr(model.config, "_attn_implementation", attn)
        self._eos_ids = {int(i) for i in eos_ids}
        self._pad_id = pad_id

    # ------------------------------------------------------------------ generation

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """The request's result, generated with those of the other threads (the batcher)."""
        return self.batcher.submit(request)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.generate_decoded([self._decode_or_error(request) for request in requests])

    def _decode_or_error(self, request: GenerationRequest) -> _Prepared | Exception:
        try:
            return self.decode(request)
        except Exception as exc:  # that request's result says why; the others go on
            return exc

    def _generate_queued(self, items: Sequence[_Prepared | Exception]) -> list[GenerationResult]:
        """The batcher's batch: every request gets a result, even when the model as a whole
        failed (it cannot load, or it failed outside one request)."""
        try:
            return self.generate_decoded(items)
        except Exception as exc:
            logger.error("chat model failed on a batch of %d: %s", len(items), exc)
            logger.debug("batch failure", exc_info=True)
            return [_error_result(exc) for _ in items]

    def decode(self, request: GenerationRequest) -> _Prepared:
        """The CPU work of a request that needs neither the model nor the lock: checks, and the
        images decoded and downscaled. Runs in the caller's thread (`submit`, before the
        request joins a batch), so it never stalls the GPU; raises for a bad request."""
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"request must be a GenerationRequest, not {type(request).__name__}")
        max_new_tokens = int(request.max_new_tokens)
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {request.max_new_tokens}")
        messages: list[dict[str, Any]] = []
        # Control tokens are neutralised as every engine does (`workers.models.control_tokens`);
        # `sanitize_control_tokens=True` below stays as the checkpoint-exact second fence.
        if request.system:
            messages.append({"role": "system", "content": [
                {"type": "text", "text": neutralise_control_tokens(request.system)}]})
        for turn in normalize_turns(request.turns):
            content: list[dict[str, Any]] = []
            if turn.role == "user":
                for data in turn.images:
                    content.append({"type": "image", "image": load_image(data, self.max_image_pixels)})
            elif turn.images:
                logger.debug("dropping %d image(s) of an assistant turn", len(turn.images))
            if turn.text or not content:
                content.append({"type": "text", "text": neutralise_control_tokens(turn.text or "")})
            messages.append({"role": turn.role, "content": content})
        return _Prepared(index=0, messages=messages, max_new_tokens=max_new_tokens,
                         on_partial=request.on_partial)

    def generate_decoded(self, items: Sequence[_Prepared | Exception]) -> list[GenerationResult]:
        """`generate_batch` for requests already decoded (an exception: that request failed)."""
        if not items:
            return []
        self.load()  # once; raises EngineError with the reason once the model failed
        with self._lock:
            results: dict[int, GenerationResult] = {}
            prepared: list[_Prepared] = []
            for index, item in enumerate(items):
                try:
                    if isinstance(item, Exception):
                        raise item
                    prepared.append(self._fit(index, item))
                except Exception as exc:
                    logger.warning("request %d rejected: %s: %s", index, type(exc).__name__, exc)
                    results[index] = _error_result(exc)
            if prepared:
                results.update(self._run(prepared))
            return [results[i] for i in range(len(items))]

    def _fit(self, index: int, item: _Prepared) -> _Prepared:
        """The request's prompt trimmed to the context (the processor's own token counts)."""
        messages = item.messages
        if self.max_context_tokens:
            messages = self._fit_context(messages, self.max_context_tokens - item.max_new_tokens)
        return _Prepared(index=index, messages=messages, max_new_tokens=item.max_new_tokens,
                         on_partial=item.on_partial)

    def _prepare(self, index: int, request: GenerationRequest) -> _Prepared:
        """Decode and fit one request (the model must be loaded)."""
        return self._fit(index, self.decode(request))

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The prompt's length in the model's own tokens, images included."""
        inputs = self.processor.apply_chat_template(
            [messages], add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt", sanitize_control_tokens=True)
        return int(inputs["input_ids"].shape[1])

    def _fit_context(self, messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
        """Drop the oldest exchanges until the prompt fits `budget` tokens (the system message
        and the newest user turn always stay)."""
        system = [m for m in messages[:1] if m["role"] == "system"]
        turns = messages[len(system):]
        while len(turns) > 1 and self.prompt_tokens(system + turns) > budget:
            turns = turns[1:]
            while len(turns) > 1 and turns[0]["role"] != "user":
                turns = turns[1:]  # a conversation starts with the person, not an answer
        return system + turns

    def _run(self, items: list[_Prepared]) -> dict[int, GenerationResult]:
        """Generate ``items`` together; on OOM halve the batch, on any other error retry one by one."""
        import torch

        failure: BaseException | None = None
        out_of_memory = False
        try:
            return self._generate(items)
        except torch.OutOfMemoryError as exc:
            out_of_memory = True
            failure = EngineOverloaded(f"out of memory with a batch of {len(items)}: {exc}")
        except Exception as exc:
            failure = exc
            if len(items) == 1:
                logger.exception("request %d failed", items[0].index)
        # The exception (and the tensors its traceback holds) is released here, before memory is freed.
        if out_of_memory:
            self._free_memory()
            if len(items) == 1:
                logger.warning("request %d: out of memory on its own", items[0].index)
                return {items[0].index: _error_result(failure)}
            logger.warning("out of memory with a batch of %d; splitting in halves", len(items))
            middle = len(items) // 2
            return {**self._run(items[:middle]), **self._run(items[middle:])}
        if len(items) == 1:
            return {items[0].index: _error_result(failure)}
        logger.warning(
            "batch of %d failed (%s: %s); retrying each request alone", len(items), type(failure).__name__, failure
        )
        results: dict[int, GenerationResult] = {}
        for item in items:
            results.update(self._run([item]))
        return results

    def _generate(self, items: list[_Prepared]) -> dict[int, GenerationResult]:
        import torch
        from transformers import StoppingCriteriaList

        started = time.perf_counter()
        inputs = self.processor.apply_chat_template(
            [item.messages for item in items],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            # user text can't write control tokens (<|im_start|>, <|image_pad|>, <start_of_image>, ...)
            sanitize_control_tokens=True,
            processor_kwargs={"padding": True, "padding_side": "left"},
        )
        inputs = inputs.to(self.model.device, dtype=self.model.dtype)
        attention_mask = inputs["attention_mask"]
        prompt_length = inputs["input_ids"].shape[1]
        prompt_tokens = attention_mask.sum(dim=1).tolist()
        limits = [item.max_new_tokens for item in items]
        generate_kwargs: dict[str, Any] = {"max_new_tokens": max(limits)}
        criteria: list[Any] = []
        if len(set(limits)) > 1:
            limit_tensor = torch.tensor(limits, device=inputs["input_ids"].device)
            criteria.append(_PerRowLimit(prompt_length, limit_tensor))
        streams = {row: item.on_partial for row, item in enumerate(items) if item.on_partial}
        if streams:
            criteria.append(_Partials(prompt_length, streams, self.processor.tokenizer,
                                      self._eos_ids))
        if criteria:
            generate_kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
        if self.model.generation_config.pad_token_id is None and self._pad_id is not None:
            generate_kwargs["pad_token_id"] = self._pad_id

        with torch.inference_mode():
            output = self.model.generate(**inputs, **generate_kwargs)
        new_tokens = output[:, prompt_length:].tolist()
        seconds = time.perf_counter() - started

        tokenizer = self.processor.tokenizer
        results: dict[int, GenerationResult] = {}
        for row, item in enumerate(items):
            tokens = new_tokens[row][: item.max_new_tokens]
            stop = next((i for i, token in enumerate(tokens) if token in self._eos_ids), None)
            completion = tokens if stop is None else tokens[: stop + 1]
            answer = tokens if stop is None else tokens[:stop]
            text = tokenizer.decode(answer, skip_special_tokens=True).strip()
            results[item.index] = GenerationResult(
                text=text,
                prompt_tokens=int(prompt_tokens[row]),
                completion_tokens=len(completion),
                seconds=seconds,
                batch_size=len(items),
            )
        logger.debug(
            "generated %d request(s) in %.2fs: prompt %s, completion %s",
            len(items),
            seconds,
            prompt_tokens,
            [results[item.index].completion_tokens for item in items],
        )
        return results

    def _free_memory(self) -> None:
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - best effort
            logger.debug("emptying the CUDA cache failed", exc_info=True)

    # ------------------------------------------------------------------ health

    def details(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "model": self.model_id,
            "device": self.device or self.requested_device,
            "dtype": str(self.dtype).replace("torch.", "") if self.dtype is not None else self.requested_dtype,
            "attention": self.attn_implementation,
            **self.batcher.stats(),
        }
        if not (self.device or "").startswith("cuda"):
            return info  # (torch is imported only once a model is on the GPU)
        try:
            import torch

            if torch.cuda.is_available():
                info["cuda_memory_allocated"] = int(torch.cuda.memory_allocated(self.device))
                info["cuda_memory_reserved"] = int(torch.cuda.memory_reserved(self.device))
        except Exception:  # pragma: no cover - health never raises
            pass
        return info


def _flash_attention_available() -> bool:
    try:
        from transformers.utils import is_flash_attn_2_available

        return bool(is_flash_attn_2_available())
    except Exception:
        return False
