"""Media: the turn's photos, downloaded (the platform's fetch policy), decoded once in a decode
process under its memory and time bounds (`workers.decoding`), and stored with the
conversation's history as the model's JPEG and the log's thumbnail.

A photo that cannot be read (too large, refused by the fetch policy, not a photo format we
open, over its budget) leaves a notice in the reply language; the turn goes on with the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import redis

from adapters.base import BaseAdapter, MediaError, MediaTooLarge
from bot.kernel.messages import AttachmentKind
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from workers.decoding import DecodeSandbox
from workers.faults import FaultInjector
from workers.images import ImageUnreadable
from workers.protocol import Photos, TurnPlan

log = logging.getLogger(__name__)


class Media:
    def __init__(self, *, max_image_pixels: int, adapters: Callable[[Any], BaseAdapter],
                 run: Callable[[Coroutine[Any, Any, Any]], Any], history: RedisHistory,
                 sandbox: DecodeSandbox, faults: FaultInjector) -> None:
        self._max_pixels = max_image_pixels
        self._adapter = adapters
        self._run = run
        self._history = history
        self._sandbox = sandbox
        self._faults = faults

    def fetch(self, plan: TurnPlan) -> tuple[Photos, tuple[str, ...]]:
        """Download, decode and store the plan's photos; a notice for each unreadable one."""
        notices: list[str] = []
        image_ids: list[str] = []
        thumbnail_ids: list[str] = []
        for attachment in plan.attachments:
            if attachment.kind != AttachmentKind.IMAGE:
                continue  # files are read by `workers.turn.reading`
            try:
                self._faults.check("fetch", plan.user_text)
                data = self._run(self._adapter(plan.key.platform).fetch_media(attachment.ref,
                                                                              attachment.size))
                prepared = self._sandbox.image(data, self._max_pixels)
            except MediaTooLarge as exc:
                notices.append(text(Text.FILE_TOO_LARGE, plan.language,
                                    limit_mb=exc.limit_bytes // (1024 * 1024)))
                continue
            except redis.RedisError:
                raise
            except (MediaError, ImageUnreadable) as exc:
                # Refused by the fetch policy, not downloadable, or not decodable: say so.
                log.warning("turn %s: attachment unreadable: %s", plan.turn_id,
                            type(exc).__name__)
                notices.append(text(Text.IMAGE_UNREADABLE, plan.language))
                continue
            except Exception as exc:  # anything unexpected
                log.warning("turn %s: attachment failed: %s", plan.turn_id, type(exc).__name__)
                notices.append(text(Text.APOLOGY, plan.language))
                continue
            image_ids.append(self._history.save_image(plan.key, prepared.model_jpeg,
                                                      since=plan.received_at))
            if prepared.thumbnail:
                thumbnail_ids.append(self._history.save_image(plan.key, prepared.thumbnail,
                                                              since=plan.received_at))
        return Photos(image_ids=tuple(image_ids), thumbnail_ids=tuple(thumbnail_ids)), \
            tuple(notices)
