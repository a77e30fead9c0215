"""Real audio files made with PyAV, in each platform's container.

`voice_note` writes what Telegram and WhatsApp send for a voice message (OGG/Opus, 48 kHz mono);
`line_audio` what LINE sends (M4A: AAC in an MP4 container). The sound is a tone with a slow
tremolo (`kind="tone"`), white noise (`"noise"`) or digital silence (`"silence"`).
"""

from __future__ import annotations

import io

import numpy as np


def samples(seconds: float, rate: int, kind: str = "tone") -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    if kind == "silence":
        return np.zeros_like(t, dtype=np.float32)
    if kind == "noise":
        return (np.random.default_rng(0).standard_normal(t.size) * 0.2).astype(np.float32)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.4 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def encode(seconds: float, container: str, codec: str, rate: int, kind: str = "tone") -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 32_000
        pcm = samples(seconds, rate, kind)
        step = 960
        for start in range(0, pcm.size, step):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + step].reshape(1, -1),
                                               format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return out.getvalue()


def voice_note(seconds: float = 2.0, kind: str = "tone") -> bytes:
    """An OGG/Opus voice note, as Telegram's `voice` and WhatsApp's `audio` with voice: true."""
    return encode(seconds, "ogg", "libopus", 48_000, kind)


def line_audio(seconds: float = 2.0, kind: str = "tone") -> bytes:
    """An M4A/AAC clip, as LINE's audio message content."""
    return encode(seconds, "mp4", "aac", 44_100, kind)
