"""Reading: the files a person sent in chat (a Telegram `document`, a LINE `file`, a WhatsApp
`document`; PDF, DOCX, Markdown, HTML or plain text), downloaded under the platform's fetch
policy and MAX_DOWNLOAD_BYTES, read in a decode process (`workers.documents.read_for_chat`,
its `ChatBudget` checked before the work: bytes, text, pages, pixels; the sandbox's memory and
time bound around it), and made part of the person's turn:

* the text, each file headed by its name and page count, cut to DOCUMENT_MAX_TOKENS with a
  mark for the model and a notice for the person;
* pages without a text layer (scans) rendered to images, at most DOCUMENT_MAX_PAGES, each
  within MAX_IMAGE_PIXELS, stored with the history like photos.

Both reach the history with the turn (`Turn.user_content`, `Turn.image_ids`), so a follow-up
question about the file finds it. A file that cannot be read (too large, encrypted, corrupt,
refused by the fetch policy) leaves a notice in the reply language; the turn goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import redis

from adapters.base import BaseAdapter, MediaError, MediaTooLarge
from bot.kernel.messages import Attachment, AttachmentKind
from bot.kernel.texts import Text, text
from storage.history import RedisHistory
from workers.decoding import DecodeFenceError, DecodeSandbox
from workers.documents import ChatBudget, ChatDocument, DocumentError, Problem, read_for_chat
from workers.images import ImageUnreadable
from workers.protocol import Documents, TurnPlan

log = logging.getLogger(__name__)

#: Characters a token, as the history estimates them (`storage.history.estimate_tokens`): the
#: text kept fits the history's budget of the next turn the same way.
CHARS_PER_TOKEN = 4
#: Told to the model where a file's text was cut.
CUT_MARK = "[… the rest of this document was left out: it is too long]"


class Reading:
    def __init__(self, *, max_pages: int, max_tokens: int, max_image_pixels: int,
                 max_bytes: int, adapters: Callable[[Any], BaseAdapter],
                 run: Callable[[Coroutine[Any, Any, Any]], Any], history: RedisHistory,
                 sandbox: DecodeSandbox) -> None:
        self._max_pages = max_pages
        self._max_chars = max_tokens * CHARS_PER_TOKEN
        self._max_pixels = max_image_pixels
        self._max_bytes = max_bytes
        self._adapter = adapters
        self._run = run
        self._history = history
        self._sandbox = sandbox

    def read(self, plan: TurnPlan) -> tuple[Documents, tuple[str, ...]]:
        """Download, read and store the plan's files; a notice for each one not read whole."""
        files = [a for a in plan.attachments if a.kind == AttachmentKind.DOCUMENT]
        if not files:
            return Documents(), ()
        notices: list[str] = []
        texts: list[str] = []
        mentions: list[str] = []
        image_ids: list[str] = []
        thumbnail_ids: list[str] = []
        chars = 0
        pages = 0
        for attachment in files:
            budget = ChatBudget(max_bytes=self._max_bytes,
                                max_chars=max(self._max_chars - chars, 0),
                                max_pages=max(self._max_pages - pages, 0),
                                max_pixels=self._max_pixels)
            try:
                document = self._read(plan, attachment, budget)
            except MediaTooLarge as exc:
                notices.append(text(Text.FILE_TOO_LARGE, plan.language,
                                    limit_mb=exc.limit_bytes // (1024 * 1024)))
                continue
            except DocumentError as exc:
                log.warning("turn %s: document unreadable: %s", plan.turn_id, exc.problem)
                if exc.problem is Problem.TOO_LARGE:
                    notices.append(text(Text.FILE_TOO_LARGE, plan.language,
                                        limit_mb=self._max_bytes // (1024 * 1024)))
                elif exc.problem is Problem.ENCRYPTED:
                    notices.append(text(Text.DOCUMENT_ENCRYPTED, plan.language))
                else:
                    notices.append(text(Text.DOCUMENT_UNREADABLE, plan.language))
                continue
            name = attachment.name or "document"
            head = f'[file "{name}"' + (f", {document.pages} pages]" if document.pages
                                        else "]")
            body = document.text
            if document.image_pages:
                listed = ", ".join(str(p) for p in document.image_pages)
                body = f"{body}\n[scanned pages, as images: {listed}]".strip()
            if document.cut:
                body = f"{body}\n{CUT_MARK}".strip()
                notices.append(text(Text.DOCUMENT_CUT, plan.language))
            texts.append(f"{head}\n{body}".strip())
            mentions.append(head)
            chars += len(document.text)
            pages += len(document.images)
            for image in document.images:
                image_ids.append(self._history.save_image(plan.key, image.model_jpeg,
                                                          since=plan.received_at))
                if image.thumbnail:
                    thumbnail_ids.append(self._history.save_image(plan.key, image.thumbnail,
                                                                  since=plan.received_at))
        return Documents(text="\n\n".join(texts), image_ids=tuple(image_ids),
                         thumbnail_ids=tuple(thumbnail_ids), mentions=tuple(mentions)), \
            tuple(dict.fromkeys(notices))

    def _read(self, plan: TurnPlan, attachment: Attachment, budget: ChatBudget) -> ChatDocument:
        """One file, downloaded and read; every failure a `DocumentError` or `MediaTooLarge`
        (a Redis error propagates)."""
        try:
            data = self._run(self._adapter(plan.key.platform).fetch_media(attachment.ref,
                                                                          attachment.size))
            return self._sandbox.run(read_for_chat, data, attachment.name,
                                     attachment.mime_type, budget)
        except (MediaTooLarge, DocumentError, redis.RedisError):
            raise
        except MediaError as exc:  # refused by the fetch policy, or not downloadable
            raise DocumentError(Problem.UNREADABLE, type(exc).__name__) from exc
        except (DecodeFenceError, ImageUnreadable) as exc:  # over the sandbox's bounds
            raise DocumentError(Problem.UNREADABLE, type(exc).__name__) from exc
        except Exception as exc:  # anything unexpected in a file from outside
            log.warning("turn %s: document failed: %s", plan.turn_id, type(exc).__name__)
            raise DocumentError(Problem.UNREADABLE, type(exc).__name__) from exc
