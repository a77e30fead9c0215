"""`sealion-bot chat`: a conversation in the terminal, through the same pipeline as Telegram.

Each line is a message for the console adapter's conversation (`adapters.local.ConsoleAdapter`,
one conversation per `--conversation` name): it is accepted like a webhook message (dedupe,
pending list, queue), a worker answers it, and the reply comes back through the conversation's
outbox. `/reset`, `/lang xx` and `/help` are the bot's own commands; `/image PATH [caption]`
sends a photo from a file, `/file PATH [question]` a document to read (PDF, Word, text,
Markdown, HTML); `/quit` (or end of input) leaves.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

from adapters.local import ConsoleAdapter, LocalDocument, LocalImage, LocalMessage
from bot.composition import Services
from bot.kernel.messages import Platform, readable_document

PROMPT = "you> "
BOT = "sealion> "
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
               ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}
#: The commands that send a file, with their usage line.
FILE_COMMANDS = {
    "/image": 'usage: /image PATH [caption] (quote a path with spaces: "my photo.jpg")',
    "/file": 'usage: /file PATH [question] (quote a path with spaces: "my letter.pdf")',
}
DOCUMENT_TYPES = {
    ".pdf": "application/pdf", ".txt": "text/plain", ".text": "text/plain",
    ".md": "text/markdown", ".markdown": "text/markdown", ".html": "text/html",
    ".htm": "text/html",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


class ConsoleChat:
    """One terminal conversation; `say` prints, `lines` are what the person types."""

    def __init__(self, services: Services, conversation: str, say: Callable[[str], None], *,
                 timeout: float = 300.0) -> None:
        self.settings = services.settings
        self.intake = services.intake
        self.mailbox = services.mailbox
        self.adapter = cast(ConsoleAdapter, services.new_adapter(Platform.CONSOLE))
        self.key = self.adapter.key(conversation)
        self.say = say
        self.timeout = timeout
        self.language: str | None = None

    def run(self, lines: Iterable[str], prompt: Callable[[], None] | None = None) -> None:
        if prompt:
            prompt()
        for raw in lines:
            line = raw.rstrip("\r\n").strip()
            if line in ("/quit", "/exit"):
                return
            if line:
                self.send_line(line)
            if prompt:
                prompt()

    def send_line(self, line: str) -> bool:
        """Send one typed line and print the answer; False when none came in time."""
        images: tuple[LocalImage, ...] = ()
        documents: tuple[LocalDocument, ...] = ()
        text = line
        command = line.split(" ", 1)[0]
        if command in FILE_COMMANDS:
            path, text = _path_and_caption(line[len(command):].strip())
            if not path:
                self.say(FILE_COMMANDS[command])
                return False
            if command == "/image":
                image = self._upload(Path(path).expanduser())
                images = (image,) if image is not None else ()
            else:
                document = self._upload_document(Path(path).expanduser())
                documents = (document,) if document is not None else ()
            if not images and not documents:  # said why
                return False
        message = LocalMessage(chat=self.key.chat_id, text=text, images=images,
                               documents=documents)
        cursor = self.mailbox.last_id(self.key)
        self.intake.accept([self.adapter.inbound(message)])
        return self._wait_for_reply(message.event_id, cursor)

    def _upload(self, path: Path) -> LocalImage | None:
        upload = self._upload_file(path)
        if upload is None:
            return None
        upload_id, size = upload
        return LocalImage(ref=upload_id, mime_type=IMAGE_TYPES.get(path.suffix.lower()),
                          size=size)

    def _upload_document(self, path: Path) -> LocalDocument | None:
        mime_type = DOCUMENT_TYPES.get(path.suffix.lower())
        if not readable_document(mime_type, path.name):
            self.say(f"{path.name}: only PDF, Word (.docx), text, Markdown and HTML files are "
                     "read")
            return None
        upload = self._upload_file(path)
        if upload is None:
            return None
        upload_id, size = upload
        return LocalDocument(ref=upload_id, mime_type=mime_type, size=size,
                             name=path.name[-255:])

    def _upload_file(self, path: Path) -> tuple[str, int] | None:
        """The file's upload id and size; None (said why) when it is missing or too large."""
        if not path.is_file():
            self.say(f"no such file: {path}")
            return None
        size = path.stat().st_size
        if size > self.settings.max_download_bytes:
            self.say(f"{path} is over MAX_DOWNLOAD_BYTES ({self.settings.max_download_bytes})")
            return None
        return self.mailbox.upload(path.read_bytes()), size

    def _wait_for_reply(self, message_id: str, cursor: str) -> bool:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            events = self.mailbox.read(self.key, cursor, block_ms=int(min(left, 5.0) * 1000))
            for event_id, event in events:
                cursor = event_id
                if event.get("type") == "message":
                    self.say(BOT + event.get("text", ""))
                elif event.get("type") == "end" and event.get("in_reply_to") == message_id:
                    language = event.get("language")
                    if language and language != self.language:
                        self.language = language
                        self.say(f"[reply language: {language}]")
                    return True
        self.say(f"(no answer within {self.timeout:.0f}s: is a worker running? "
                 "GET /readyz says why not)")
        return False

def _path_and_caption(rest: str) -> tuple[str, str]:
    """`/image` and `/file` arguments: a path (quoted or escaped as a shell would, or the longest run of
    words naming a file) and the caption after it."""
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    if not words:
        return "", ""
    if Path(words[0]).expanduser().is_file() or rest[:1] in "'\"" or "\\" in rest:
        return words[0], " ".join(words[1:])
    raw = rest.split(" ")
    for end in range(len(raw), 0, -1):
        candidate = " ".join(raw[:end])
        if Path(candidate).expanduser().is_file():
            return candidate, " ".join(raw[end:]).strip()
    return words[0], " ".join(words[1:])
