"""Hearing: voice notes in a turn, checked by the I/O worker, heard by the inference worker, and
folded into the turn's messages before the turn is planned (`Hearing` is the stage).

    gather (io)        download each voice note (the platform's size limit), decode it with
                       PyAV to 16 kHz mono as its MIME type says, refuse what is corrupt, too
                       long or silent, and keep the rest in Redis for the recogniser (`Heard`
                       with a `slot`)
    transcribe (gpu)   decode the kept clips again and transcribe them together (batched)
    fold (io)          each transcript joins its message's text, the recogniser's language
                       becomes the message's language hint, and the audio attachments go;
                       `notices` words what could not be heard, in the reply language

A `Heard` crosses Celery as JSON; it carries no audio, only the slot where it waits.

Both decode through `decode` (an `AudioDecoder`): the stage passes its
`workers.decoding.DecodeSandbox.audio`, which runs `workers.audio.decode` in a process under
a memory and a time bound; the default decodes in this process (tests, tools).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from adapters.base import BaseAdapter, MediaTooLarge
from bot.kernel.messages import Attachment, AttachmentKind, ConversationKey, InboundMessage
from bot.kernel.texts import Text, text
from storage.metrics import RedisMetrics
from storage.voice import VoiceNotes
from workers.audio import AudioError, AudioTooLong, Clip, NotAudio
from workers.audio import decode as decode_here
from workers.decoding import DecodeSandbox
from workers.faults import FaultInjector
from workers.models.speech.base import BaseRecogniser, RecogniserError, RecogniserUnavailable
from workers.protocol import DEFAULT_MIME, Heard, HearingJob, Problem, Voice, VoiceNote

log = logging.getLogger(__name__)

class AudioDecoder(Protocol):
    """`workers.audio.decode`'s contract: 16 kHz mono of `data` read as `mime_type`, or an
    `AudioError`."""

    def __call__(self, data: bytes, max_seconds: float, mime_type: str | None) -> Clip: ...


def audio_of(messages: Sequence[InboundMessage]) -> list[tuple[int, Attachment]]:
    """The turn's voice notes, with the index of their message."""
    return [(i, a) for i, m in enumerate(messages) for a in m.attachments
            if a.kind == AttachmentKind.AUDIO]


def gather(messages: Sequence[InboundMessage], fetch: Callable[[Attachment], bytes],
           save: Callable[[int, bytes], None], max_seconds: float,
           decode: AudioDecoder = decode_here) -> list[Heard]:
    """Download and check every voice note; keep the good ones with `save(slot, data)`."""
    heard: list[Heard] = []
    for slot, (index, attachment) in enumerate(audio_of(messages)):
        mime = attachment.mime_type or DEFAULT_MIME
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
            clip = decode(data, max_seconds, mime)
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
               recogniser: BaseRecogniser, max_seconds: float,
               decode: AudioDecoder = decode_here) -> list[Heard]:
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
            clips.append((i, decode(data, max_seconds, item.mime_type)))
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


class Hearing:
    """The hearing stage: `gather` in the I/O worker, `transcribe` beside the model, `result`
    for the plan. Without a recogniser or a place for the clips, every voice note gets the
    apology (never a lost turn)."""

    def __init__(self, *, max_seconds: float, adapters: Callable[[Any], BaseAdapter],
                 run: Callable[[Coroutine[Any, Any, Any]], Any], voice: VoiceNotes | None,
                 recogniser: Callable[[], BaseRecogniser] | None, sandbox: DecodeSandbox,
                 metrics: RedisMetrics, faults: FaultInjector) -> None:
        self.max_seconds = max_seconds
        self._adapter = adapters
        self._run = run
        self._voice = voice
        self._recogniser = recogniser
        self._sandbox = sandbox
        self._metrics = metrics
        self._faults = faults

    def gather(self, key: ConversationKey, turn_id: str,
               messages: Sequence[InboundMessage]) -> list[Heard]:
        """Download and check the turn's voice notes; keep those worth hearing in Redis."""
        if not audio_of(messages):
            return []
        adapter = self._adapter(key.platform)
        try:  # the person sees the bot at work while it listens
            self._run(adapter.indicate_typing(key, messages[-1].reply_context))
        except Exception as exc:
            log.info("typing indicator failed: %s", type(exc).__name__)

        def fetch(attachment: Attachment) -> bytes:
            self._faults.check("fetch")
            return self._run(adapter.fetch_media(attachment.ref, attachment.size))

        def save(slot: int, data: bytes) -> None:
            if self._voice is None:
                raise RecogniserUnavailable("no place to keep voice notes")
            self._voice.save(turn_id, slot, data)

        try:
            heard = gather(messages, fetch, save, self.max_seconds, decode=self._sandbox.audio)
        except RecogniserUnavailable:
            heard = [Heard(message=i, problem=Problem.FAILED) for i, _ in audio_of(messages)]
        log.info("turn %s: %d voice note(s), %d to hear", turn_id, len(heard),
                 sum(h.pending for h in heard),
                 extra={"conversation": key.log_id(), "turn": turn_id})
        return heard

    def transcribe(self, job: HearingJob) -> tuple[Heard, ...]:
        """Hear the job's voice notes with the process's recogniser (batched with other
        turns'); a recogniser that cannot serve leaves them failed, never the turn stuck."""
        started = time.perf_counter()
        try:
            if self._recogniser is None or self._voice is None:
                raise RecogniserUnavailable("speech recognition is not set up here")
            voice = self._voice
            heard = transcribe(job.heard, lambda slot: voice.load(job.turn_id, slot),
                               self._recogniser(), self.max_seconds,
                               decode=self._sandbox.audio)
        except RecogniserError as exc:
            log.error("turn %s: speech recognition unavailable: %s", job.turn_id, exc)
            heard = [h.model_copy(update={"problem": Problem.FAILED}) if h.pending else h
                     for h in job.heard]
        seconds = time.perf_counter() - started
        audio = sum(h.seconds for h in job.heard if h.pending)
        log.info("turn %s: %.1f s of speech heard in %.2f s", job.turn_id, audio, seconds,
                 extra={"conversation": job.key.log_id(), "turn": job.turn_id})
        self._metrics.observe("transcription_seconds", seconds)
        return tuple(heard)

    def result(self, heard: Sequence[Heard], language: str) -> tuple[Voice, tuple[str, ...]]:
        """What the voice notes give the turn (transcript, clips kept) and their notices."""
        for item in heard:
            self._metrics.inc("voice_notes",
                              outcome=item.problem.value if item.problem else "heard")
        voice = Voice(transcript=transcript(heard),
                      notes=tuple(VoiceNote(slot=h.slot, mime_type=h.mime_type)
                                  for h in heard if h.slot is not None))
        return voice, tuple(notices(heard, language, self.max_seconds))

    def drop(self, turn_id: str, voice: Voice) -> None:
        """The turn was heard and logged: its clips go."""
        if voice.notes and self._voice is not None:
            self._voice.drop(turn_id, [note.slot for note in voice.notes])

    def kept_audio(self, turn_id: str, voice: Voice) -> tuple[tuple[bytes, str], ...]:
        """The turn's clips for the log (ASR_KEEP_AUDIO)."""
        if self._voice is None:
            return ()
        store = self._voice
        return tuple((data, note.mime_type) for note in voice.notes
                     if (data := store.load(turn_id, note.slot)) is not None)
