"""Hostile voice notes of issue #18, built with PyAV when a test asks for them (none is kept).

* `tiny_flac`: the 55-byte FLAC of the issue: a 1 Hz mono stream, one 8,192-sample frame of
  silence, and no total length (STREAMINFO says 0 samples). Resampled to 16 kHz in one call,
  that frame asks for 131 million samples (about 2.5 GB of memory on PyAV 18).
* `vorbis_1hz`: the same idea where the container and codec are ones a voice note may use
  (Vorbis in Ogg, declared `audio/ogg`), so only the sample-rate check stops it.
* `opus_channels`: Ogg/Opus with any channel count (mapping family 255 above 8).
* `lying_ogg`: an Ogg/Opus voice note whose last page says it ends after one second (FFmpeg
  takes the length from there); the pages before it go on.
* `ffconcat`: an FFmpeg playlist naming another file, relative to the decoder's directory.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from tests.helpers.audio import voice_note


def _encode(container: str, codec: str, rate: int, layout: str, frames: list[np.ndarray],
            fmt: str, options: dict[str, str] | None = None) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout, options=options or {})
        pts = 0
        for pcm in frames:
            frame = av.AudioFrame.from_ndarray(pcm, format=fmt, layout=stream.layout)
            frame.sample_rate, frame.pts = rate, pts
            pts += frame.samples
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return out.getvalue()


def tiny_flac(rate: int = 1, samples: int = 8192) -> bytes:
    """A FLAC of one `samples`-sample frame at `rate` Hz, no length declared, 55 bytes."""
    raw = _encode("flac", "flac", rate, "mono", [np.zeros((1, samples), np.int16)], "s16",
                  {"frame_size": str(samples)})
    assert raw[:4] == b"fLaC"
    position, streaminfo = 4, bytearray()
    while True:  # keep STREAMINFO alone (drop the padding and comment blocks PyAV writes)
        header, size = raw[position], int.from_bytes(raw[position + 1:position + 4], "big")
        if header & 0x7F == 0:
            streaminfo = bytearray(raw[position + 4:position + 4 + size])
        position += 4 + size
        if header & 0x80:
            break
    streaminfo[13] &= 0xF0  # total samples (36 bits) = 0: "unknown"; and no MD5
    streaminfo[14:34] = bytes(20)
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo + raw[position:]


def flac_in_ogg(data: bytes) -> bytes:
    """The FLAC stream of `data` remuxed into Ogg (a codec Ogg may carry, not a voice note)."""
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(data), format="flac") as source, \
            av.open(out, mode="w", format="ogg") as sink:
        stream = sink.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                sink.mux(packet)
    return out.getvalue()


def vorbis_1hz(samples: int = 2048) -> bytes:
    """Ogg/Vorbis (stereo: FFmpeg's own encoder's only layout) at 1 Hz: `samples` seconds."""
    return _encode("ogg", "vorbis", 1, "stereo", [np.zeros((1, 2 * samples), np.float32)],
                   "flt", {"strict": "experimental"})


def opus_channels(channels: int, seconds: float = 0.4) -> bytes:
    """Ogg/Opus noise in `channels` channels (mapping family 255 past 8, as libopus allows)."""
    rng = np.random.default_rng(0)
    frames = [(rng.standard_normal((1, 960 * channels)) * 0.1).astype(np.float32)
              for _ in range(int(seconds * 50))]
    layout = "7.1" if channels == 8 else f"{channels} channels"
    options = {"mapping_family": "255"} if channels > 8 else {}
    return _encode("ogg", "libopus", 48_000, layout, frames, "flt", options)


def _ogg_crc(page: bytes | bytearray) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, from 0."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        crc &= 0xFFFFFFFF
    return crc


def lying_ogg(seconds: float, claimed: float = 1.0) -> bytes:
    """An Ogg/Opus voice note of `seconds` whose last page claims `claimed` seconds."""
    data = bytearray(voice_note(seconds))
    position = last = 0
    while position < len(data):  # walk the pages to the last one
        assert data[position:position + 4] == b"OggS"
        segments = data[position + 26]
        last = position
        position += 27 + segments + sum(data[position + 27:position + 27 + segments])
    data[last + 6:last + 14] = struct.pack("<q", int(claimed * 48_000))  # granule position
    data[last + 22:last + 26] = bytes(4)
    data[last + 22:last + 26] = struct.pack("<I", _ogg_crc(data[last:]))
    return bytes(data)


def ffconcat(name: str) -> bytes:
    """An FFmpeg playlist that makes the concat demuxer open `name` (a relative path)."""
    return f"ffconcat version 1.0\nfile {name}\n".encode()
