"""Audio preparation before speech recognition: decode with PyAV to 16 kHz mono, bounded.

PyAV's wheels carry FFmpeg's libraries, so a voice note in any container the platforms send
decodes without a system FFmpeg. What a decode may cost is declared, and checked before the
work, never after:

* The demuxer is chosen by the declared MIME type (`CONTAINERS`: OGG for Telegram's and
  WhatsApp's voice notes, MP4 for LINE's M4A, and the audio types WhatsApp lists: AAC, AMR,
  MP3, MP4, OGG/Opus), never probed from the bytes, so a playlist (ffconcat, HLS) or an image
  can never be chosen; each container may carry only its usual codecs. Nested opens are off
  (`protocol_whitelist`), so no demuxer can open another file or URL either. Another MIME type
  is `NotAudio` (the "couldn't read" notice).
* A stream (and every decoded frame) must have 8-192 kHz and at most `MAX_CHANNELS` channels:
  a 1 Hz stream would be resampled x16,000 (a 55-byte file asked for gigabytes).
* Each frame's output size (samples * 16 kHz / its rate) is counted before it is resampled,
  and the clip is refused (`AudioTooLong`) as soon as that total passes the limit, whatever
  the header declared: a lying or missing length costs at most `max_seconds` of output.

`workers.decoding` runs `decode` in a process under a memory and a time bound, the second
fence. `decode` itself is the pure function that runs there (and in tests).

    AudioError
     ├── NotAudio       the bytes are no audio we decode (another type, corrupt, a video,
     │                  an odd sample rate or channel count, nothing)
     └── AudioTooLong   longer than the limit; `seconds` says how long (at least)
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
#: A clip whose loudest 30 ms stays under this level (dBFS) holds nothing to hear.
SILENCE_DBFS = -50.0
_FRAME = SAMPLE_RATE * 30 // 1000
#: Sample rates a voice note may have: telephone speech to studio audio.
MIN_RATE, MAX_RATE = 8_000, 192_000
#: 7.1 surround is the most the accepted codecs carry in their usual channel mappings (AAC,
#: Opus, Vorbis); a voice note is mono or stereo. More channels only multiply decoding work.
MAX_CHANNELS = 8

_OPUS, _VORBIS, _AAC = ("opus", "libopus"), ("vorbis",), ("aac", "aac_fixed")
_MP3, _AMR = ("mp3float", "mp3"), ("amrnb", "amrwb", "libopencore_amrnb")
#: The demuxer each declared MIME type forces (an FFmpeg input format), and the decoders its
#: streams may use. Parameters (`; codecs=opus`) and case are ignored.
CONTAINERS: dict[str, tuple[str, frozenset[str]]] = {
    **dict.fromkeys(("audio/ogg", "audio/opus"), ("ogg", frozenset(_OPUS + _VORBIS))),
    **dict.fromkeys(("audio/mp4", "audio/m4a", "audio/x-m4a"), ("mp4", frozenset(_AAC + _MP3))),
    **dict.fromkeys(("audio/aac", "audio/x-aac"), ("aac", frozenset(_AAC))),
    **dict.fromkeys(("audio/mpeg", "audio/mp3"), ("mp3", frozenset(_MP3))),
    **dict.fromkeys(("audio/amr", "audio/amr-wb"), ("amr", frozenset(_AMR))),
}
#: Demuxer options: no nested opens at all (no other file, no URL), whatever the container.
_OPEN_OPTIONS = {"protocol_whitelist": "none", "enable_drefs": "0"}


class AudioError(ValueError):
    """The clip cannot be transcribed."""


class NotAudio(AudioError):
    """The bytes are not audio PyAV can decode."""


class AudioTooLong(AudioError):
    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"audio of {seconds:.0f} s is over the {limit:.0f} s limit")
        self.seconds = seconds
        self.limit = limit

    def __reduce__(self) -> tuple[type[AudioTooLong], tuple[float, float]]:
        return AudioTooLong, (self.seconds, self.limit)  # crosses back from a decode process


@dataclass(frozen=True)
class Clip:
    """Mono float32 samples in [-1, 1] at `SAMPLE_RATE`."""

    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def is_silent(self, threshold_dbfs: float = SILENCE_DBFS) -> bool:
        return loudest_dbfs(self.samples) < threshold_dbfs


def container_for(mime_type: str | None) -> tuple[str, frozenset[str]]:
    """The demuxer and codecs a declared MIME type allows; `NotAudio` for any other type."""
    base = (mime_type or "").split(";", 1)[0].strip().lower()
    if base not in CONTAINERS:
        raise NotAudio(f"not an audio type we read: {base[:40]!r}")
    return CONTAINERS[base]


def _check_shape(rate: int | None, channels: int | None) -> None:
    if not rate or not MIN_RATE <= rate <= MAX_RATE:
        raise NotAudio(f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if not channels or channels > MAX_CHANNELS:
        raise NotAudio(f"{channels} channels (at most {MAX_CHANNELS})")


def decode(data: bytes, max_seconds: float, mime_type: str | None) -> Clip:
    """The first audio stream of `data`, read as `mime_type` says, as 16 kHz mono.

    `AudioTooLong` past `max_seconds` (decided before the frame that would pass it is
    resampled); `NotAudio` for another type, a codec its container should not carry, a sample
    rate or channel count out of bounds, or bytes that do not decode.
    """
    import av

    demuxer, codecs = container_for(mime_type)
    limit = int(max_seconds * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    total = 0  # samples out of the resampler
    budgeted = 0.0  # samples the frames fed to it will come to
    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer,
                     container_options=_OPEN_OPTIONS) as container:
            if not container.streams.audio:
                raise NotAudio("no audio stream")
            stream = container.streams.audio[0]
            codec = stream.codec_context
            if codec.name not in codecs:
                raise NotAudio(f"{codec.name} in {demuxer} is not a voice note")
            _check_shape(codec.sample_rate, codec.channels)
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_seconds + 1:
                raise AudioTooLong(declared, max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                # A frame may change rate or layout mid-stream: each is checked, and its
                # output counted, before the resampler allocates anything for it.
                _check_shape(frame.sample_rate, frame.layout.nb_channels)
                budgeted += frame.samples * SAMPLE_RATE / frame.sample_rate
                if budgeted > limit:
                    raise AudioTooLong(budgeted / SAMPLE_RATE, max_seconds)
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    total += out.samples
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
                total += out.samples
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, OSError, IndexError) as exc:
        raise NotAudio(f"undecodable audio: {exc}") from exc
    if total == 0:
        raise NotAudio("no audio samples")
    if total > limit + math.ceil(SAMPLE_RATE / 100):  # the resampler's flush: 10 ms at most
        raise AudioTooLong(total / SAMPLE_RATE, max_seconds)
    samples = np.clip(np.concatenate(pieces).astype(np.float32, copy=False), -1.0, 1.0)
    return Clip(samples)


def _declared_seconds(container: object, stream: object) -> float | None:
    duration, time_base = getattr(stream, "duration", None), getattr(stream, "time_base", None)
    if duration is not None and time_base is not None:
        return float(duration * time_base)
    container_duration = getattr(container, "duration", None)
    if container_duration is not None:
        return container_duration / 1_000_000  # av.time_base
    return None


def loudest_dbfs(samples: np.ndarray) -> float:
    """The RMS level of the loudest 30 ms window, in dB relative to full scale."""
    if samples.size == 0:
        return -np.inf
    usable = samples[: samples.size - samples.size % _FRAME] if samples.size >= _FRAME else samples
    frames = usable.reshape(-1, min(_FRAME, usable.size)).astype(np.float64)
    rms = float(np.sqrt(np.mean(frames * frames, axis=1)).max())
    return 20 * np.log10(rms) if rms > 0 else -np.inf


def to_wav(clip: Clip) -> bytes:
    """16-bit PCM WAV bytes of the clip (what an OpenAI-compatible server reads everywhere)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((clip.samples * 32767).astype("<i2").tobytes())
    return out.getvalue()
