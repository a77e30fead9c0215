"""Audio preparation before speech recognition: decode with PyAV to 16 kHz mono, bounded.

PyAV's wheels carry FFmpeg's libraries, so a voice note in any container the platforms send
(OGG/Opus from Telegram and WhatsApp, M4A/AAC from LINE, MP3 from a Telegram `audio`) decodes
without a system FFmpeg. Decoding stops as soon as the clip is longer than the caller's limit,
so a lying header or a very long file costs at most that many seconds of work.

    AudioError
     ├── NotAudio       the bytes are no audio PyAV can decode (corrupt, a video, nothing)
     └── AudioTooLong   longer than the limit; `seconds` says how long (at least)
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
#: A clip whose loudest 30 ms stays under this level (dBFS) holds nothing to hear.
SILENCE_DBFS = -50.0
_FRAME = SAMPLE_RATE * 30 // 1000


class AudioError(ValueError):
    """The clip cannot be transcribed."""


class NotAudio(AudioError):
    """The bytes are not audio PyAV can decode."""


class AudioTooLong(AudioError):
    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"audio of {seconds:.0f} s is over the {limit:.0f} s limit")
        self.seconds = seconds
        self.limit = limit


@dataclass(frozen=True)
class Clip:
    """Mono float32 samples in [-1, 1] at `SAMPLE_RATE`."""

    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def is_silent(self, threshold_dbfs: float = SILENCE_DBFS) -> bool:
        return loudest_dbfs(self.samples) < threshold_dbfs


def decode(data: bytes, max_seconds: float) -> Clip:
    """The first audio stream of `data` as 16 kHz mono; `AudioTooLong` past `max_seconds`."""
    import av

    limit = int(max_seconds * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise NotAudio("no audio stream")
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_seconds + 1:
                raise AudioTooLong(declared, max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if total > limit:
                    raise AudioTooLong(total / SAMPLE_RATE, max_seconds)
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
                total += out.samples
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, OSError, IndexError) as exc:
        raise NotAudio(f"undecodable audio: {exc}") from exc
    if total == 0:
        raise NotAudio("no audio samples")
    if total > limit:
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
