"""The knowledge base's embedding model (KNOWLEDGE_EMBEDDING_MODEL, off by default): texts to
L2-normalised vectors for `storage.knowledge`'s hybrid ranking.

    TransformersEmbedder   a local checkpoint folder or a Hugging Face id, loaded with
                           transformers' `AutoModel` and `AutoTokenizer` (the [gpu] extra) on
                           first use, once per process, under the host's lock (`ModelHost`):
                           mean pooling of the last hidden state over the attention mask,
                           texts cut to `max_length` tokens

It is built by the composition root like the other hosts, only for the processes that index or
search (the knowledge base's), and warmed up at an I/O worker's start (`KnowledgeBase.prepare`).
A model that cannot load (torch or transformers missing, no such checkpoint) says so once in the
log, at WARNING, and `embed` answers None from then on: the knowledge base searches with full
text alone and a turn never fails for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from workers.models.host import (
    HostKind,
    HostState,
    ModelHost,
    missing_checkpoint,
    quiet_transformers,
)

log = logging.getLogger(__name__)

#: Texts embedded in one forward pass.
BATCH = 16


class EmbedderUnavailable(RuntimeError):
    """The embedding model cannot serve in this process (the reason is the message)."""


class TransformersEmbedder(ModelHost):
    kind: ClassVar[HostKind] = HostKind.EMBEDDING
    name = "transformers"
    unavailable_error: ClassVar[type[Exception]] = EmbedderUnavailable

    def __init__(self, model: str, *, max_length: int = 512, device: str | None = None) -> None:
        self.model = model
        self.max_length = max_length
        self.requested_device = device
        self.device: str | None = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._dims: int | None = None
        self._told = False
        self._tell_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def _load(self) -> None:
        if (missing := missing_checkpoint(self.model)) is not None:
            raise EmbedderUnavailable(missing)
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"{exc} (KNOWLEDGE_EMBEDDING_MODEL needs torch and transformers: install the "
                "[gpu] extra)") from exc
        quiet_transformers()
        device = self.requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(self.model)
        model = AutoModel.from_pretrained(self.model)
        model.to(device)
        model.eval()
        self._tokenizer, self._model, self.device = tokenizer, model, device
        self._dims = int(self._forward(["ready"]).shape[1])

    def _forward(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        rows = []
        with self._run_lock, torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                batch = self._tokenizer(list(texts[start:start + BATCH]), padding=True,
                                        truncation=True, max_length=self.max_length,
                                        return_tensors="pt").to(self.device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
                rows.append(pooled.cpu().numpy())
        return np.concatenate(rows).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """One L2-normalised float32 row per text; None when the model cannot serve (said once
        in the log; the knowledge base goes on with full text)."""
        try:
            self.load()
        except Exception:
            self._tell()
            return None
        if not texts:
            return np.zeros((0, self._dims or 0), np.float32)
        return self._forward(texts)

    def _tell(self) -> None:
        with self._tell_lock:
            if self._told:
                return
            self._told = True
        log.warning("knowledge embeddings off: the model %s did not load (%s); the knowledge "
                    "base searches with full text alone", self.model, self._status[1])

    def details(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "dims": self._dims,
                "max_length": self.max_length}

    @property
    def serving(self) -> bool:
        return self._status[0] is HostState.READY
