"""Voice notes in a turn: checked by the I/O worker, heard by the inference worker, and folded
into the turn's messages before the turn is planned.

    gather (io)        download each voice note (the platform's size limit), decode it with
                       PyAV to 16 kHz mono, refuse what is corrupt, too long or silent, and keep
                       the rest in Redis for the recogniser (`Heard` with a `slot`)
    transcribe (gpu)   decode the kept clips again and transcribe them together (batched)
    fold (io)          each transcript joins its message's text, the recogniser's language
                       becomes the message's language hint, and the audio attachments go;
                       `notices` words what could not be heard, in the reply language

A `Heard` crosses Celery as JSON; it carries no audio, only the slot where it waits.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from adapters.base import MediaTooLarge
from bot.messages import Attachment, AttachmentKind, ConversationKey, InboundMessage
from bot.texts import Text, text
from workers.asr.base import BaseRecogniser, RecogniserError
from workers.audio import AudioError, AudioTooLong, Clip, NotAudio, decode

log = logging.getLogger(__name__)


class Problem(enum.StrEnum):
    SILENT = "silent"  # nothing to hear, or the recogniser heard nothing
    TOO_LONG = "too_long"  # over ASR_MAX_SECONDS
    UNREADABLE = "unreadable"  # not audio we can decode, or not downloadable
    TOO_LARGE = "too_large"  # over the download limit
    FAILED = "failed"  # the recogniser failed


class Heard(BaseModel):
    """One voice note of the turn: where it waits, then what was heard (or why not)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Index of its message among the turn's messages.
    message: int
    #: Where its bytes wait in Redis (`storage.voice.VoiceNotes`); None once settled or failed.
    slot: int | None = None
    mime_type: str = "audio/ogg"
    seconds: float = 0.0
    text: str = ""
    #: The language the recogniser heard, as one of our codes.
    language: str | None = None
    problem: Problem | None = None
    #: MediaTooLarge's limit, for the notice.
    limit_bytes: int = 0

    @property
    def pending(self) -> bool:
        return self.slot is not None and self.problem is None and not self.text


class HearingJob(BaseModel):
    """What the inference worker transcribes: the turn's voice notes, some already settled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    turn_id: str
    lease: str
    key: ConversationKey
    heard: tuple[Heard, ...]


def audio_of(messages: Sequence[InboundMessage]) -> list[tuple[int, Attachment]]:
    """The turn's voice notes, with the index of their message."""
    return [(i, a) for i, m in enumerate(messages) for a in m.attachments
            if a.kind == AttachmentKind.AUDIO]


def gather(messages: Sequence[InboundMessage], fetch: Callable[[Attachment], bytes],
           save: Callable[[int, bytes], None], max_seconds: float) -> list[Heard]:
    """Download and check every voice note; keep the good ones with `save(slot, data)`."""
    heard: list[Heard] = []
    for slot, (index, attachment) in enumerate(audio_of(messages)):
        mime = attachment.mime_type or "audio/ogg"
        declared = attachment.duration or 0.0
        if declared > max_seconds + 1:  # the platform said so: not even downloaded
            heard.append(Heard(message=index, mime_type=mime, seconds=declared,
                               problem=Problem.TOO_LONG))
            continue
        try:
            data = fetch(attachment)
        except MediaTooLarge as exc:
            heard.append(Heard(message=index, mime_type=mime, problem=Problem.TOO_LARGE,
                               limit_bytes=exc.limit_bytes))
            continue
        except Exception as exc:  # refused by the fetch policy, gone, unreachable
            log.warning("voice note not downloaded: %s", type(exc).__name__)
            heard.append(Heard(message=index, mime_type=mime, problem=Problem.UNREADABLE))
            continue
        try:
            clip = decode(data, max_seconds)
        except AudioTooLong as exc:
            heard.append(Heard(message=index, mime_type=mime, seconds=exc.seconds,
                               problem=Problem.TOO_LONG))
            continue
        except AudioError as exc:
            log.warning("voice note unreadable: %s", exc)
            heard.append(Heard(message=index, mime_type=mime, problem=Problem.UNREADABLE))
            continue
        if clip.is_silent():
            heard.append(Heard(message=index, mime_type=mime, seconds=clip.seconds,
                               problem=Problem.SILENT))
            continue
        save(slot, data)
        heard.append(Heard(message=index, slot=slot, mime_type=mime, seconds=clip.seconds))
    return heard


def transcribe(heard: Sequence[Heard], load: Callable[[int], bytes | None],
               recogniser: BaseRecogniser, max_seconds: float) -> list[Heard]:
    """Transcribe the pending voice notes together; the others pass through unchanged."""
    out = list(heard)
    clips: list[tuple[int, Clip]] = []
    for i, item in enumerate(heard):
        if not item.pending:
            continue
        assert item.slot is not None
        data = load(item.slot)
        try:
            if data is None:
                raise NotAudio("the voice note expired before it was heard")
            clips.append((i, decode(data, max_seconds)))
        except AudioError as exc:
            log.warning("voice note unreadable at transcription: %s", exc)
            out[i] = item.model_copy(update={"problem": Problem.UNREADABLE})
    if not clips:
        return out
    try:
        transcripts = recogniser.transcribe_batch([clip for _, clip in clips])
    except RecogniserError as exc:
        log.error("speech recognition failed: %s", exc)
        for i, _ in clips:
            out[i] = out[i].model_copy(update={"problem": Problem.FAILED})
        return out
    for (i, _), transcript in zip(clips, transcripts, strict=True):
        spoken = transcript.text.strip()
        out[i] = out[i].model_copy(update={
            "text": spoken, "language": transcript.language,
            "problem": None if spoken else Problem.SILENT})
    return out


def fold(messages: Sequence[InboundMessage],
         heard: Sequence[Heard]) -> list[InboundMessage]:
    """The messages as the turn reads them: transcripts joined to their message's text, the
    recogniser's language as the hint, and no audio attachments left."""
    folded = []
    for index, message in enumerate(messages):
        spoken = [h for h in heard if h.message == index and h.text]
        if not spoken and not any(a.kind == AttachmentKind.AUDIO for a in message.attachments):
            folded.append(message)
            continue
        texts = [message.text] if message.text else []
        texts += [h.text for h in spoken]
        hint = next((h.language for h in spoken if h.language), None)
        folded.append(message.model_copy(update={
            "text": "\n".join(texts),
            "language_hint": hint or message.language_hint,
            "attachments": tuple(a for a in message.attachments
                                 if a.kind != AttachmentKind.AUDIO)}))
    return folded


def transcript(heard: Sequence[Heard]) -> str | None:
    """Everything heard this turn, in order; None when nothing was spoken."""
    spoken = [h.text for h in heard if h.text]
    return "\n".join(spoken) if spoken else None


def notices(heard: Sequence[Heard], language: str, max_seconds: float) -> list[str]:
    """What to tell the person about the voice notes that could not be heard."""
    out: list[str] = []
    for item in heard:
        if item.problem is None:
            continue
        if item.problem == Problem.SILENT:
            notice = text(Text.AUDIO_SILENT, language)
        elif item.problem == Problem.TOO_LONG:
            notice = text(Text.AUDIO_TOO_LONG, language, minutes=f"{max_seconds / 60:g}")
        elif item.problem == Problem.TOO_LARGE:
            notice = text(Text.FILE_TOO_LARGE, language,
                          limit_mb=max(item.limit_bytes // (1024 * 1024), 1))
        elif item.problem == Problem.UNREADABLE:
            notice = text(Text.AUDIO_UNREADABLE, language)
        else:
            notice = text(Text.APOLOGY, language)
        if notice not in out:
            out.append(notice)
    return out
