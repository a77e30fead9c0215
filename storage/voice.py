"""A turn's voice notes, as the person sent them, kept in Redis between hearing and answering.

The I/O worker stores each clip it downloaded and checked (`save`); the inference worker reads
it to transcribe it (`load`); the turn's delivery reads it once more for the log when
ASR_KEEP_AUDIO is on, then drops it (`drop`). Every clip expires with the turn anyway.
"""

from __future__ import annotations

from typing import cast

import redis

from storage.keys import KeyBuilder


class VoiceNotes:
    def __init__(self, client: redis.Redis, *, ttl: int, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._ttl = ttl
        self._keys = keys or KeyBuilder()

    def save(self, turn_id: str, slot: int, data: bytes) -> None:
        self._redis.set(self._keys.turn_audio(turn_id, slot), data, ex=self._ttl)

    def load(self, turn_id: str, slot: int) -> bytes | None:
        value = self._redis.get(self._keys.turn_audio(turn_id, slot))
        return bytes(cast(bytes, value)) if value is not None else None

    def drop(self, turn_id: str, slots: list[int] | tuple[int, ...]) -> None:
        if slots:
            self._redis.delete(*(self._keys.turn_audio(turn_id, slot) for slot in slots))
