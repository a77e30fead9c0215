"""Voice notes decoded with PyAV: each platform's container, silence, length limits, junk."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from tests.helpers.audio import encode, line_audio, voice_note
from tests.helpers.images import image_bytes
from workers.audio import (
    CONTAINERS,
    SAMPLE_RATE,
    AudioTooLong,
    NotAudio,
    container_for,
    decode,
    loudest_dbfs,
    to_wav,
)

PLATFORMS = [(voice_note, "audio/ogg"), (voice_note, "audio/ogg; codecs=opus"),
             (line_audio, "audio/m4a"), (line_audio, "audio/x-m4a")]
IDS = ["telegram-ogg-opus", "whatsapp-ogg-opus", "line-m4a-aac", "m4a-aac"]


@pytest.mark.parametrize("make, mime", PLATFORMS, ids=IDS)
def test_platform_containers_decode_to_16k_mono(make, mime) -> None:
    clip = decode(make(3.0), max_seconds=300, mime_type=mime)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.seconds == pytest.approx(3.0, abs=0.1)
    assert not clip.is_silent()
    # The 220 Hz tone survives resampling: the spectrum peaks there.
    spectrum = np.abs(np.fft.rfft(clip.samples[:SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 220) <= 3


@pytest.mark.parametrize("make, mime", PLATFORMS, ids=IDS)
def test_silence_is_detected(make, mime) -> None:
    assert decode(make(2.0, kind="silence"), 300, mime).is_silent()
    assert not decode(make(2.0, kind="noise"), 300, mime).is_silent()


def test_quiet_speech_level_is_not_silence() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    whisper_level = (0.02 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)  # about -37 dBFS
    assert -40 < loudest_dbfs(whisper_level) < -35


def test_over_the_limit_is_refused_before_decoding_it_all() -> None:
    with pytest.raises(AudioTooLong) as caught:
        decode(voice_note(12.0), max_seconds=5, mime_type="audio/ogg")
    assert caught.value.seconds > 5 and caught.value.limit == 5


def test_a_header_that_hides_the_length_still_stops_at_the_limit() -> None:
    # Raw ADTS AAC carries no duration: decoding itself must stop at the limit.
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(line_audio(8.0))) as source, av.open(out, "w", format="adts") as sink:
        stream = sink.add_stream("aac", rate=44_100, layout="mono")
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    with pytest.raises(AudioTooLong):
        decode(out.getvalue(), max_seconds=3, mime_type="audio/aac")
    clip = decode(out.getvalue(), max_seconds=30, mime_type="audio/aac")
    assert clip.seconds == pytest.approx(8.0, abs=0.2)


@pytest.mark.parametrize("data", [b"", b"OggS" + bytes(2000), b"\x00" * 5000,
                                  voice_note(1.0)[:60]], ids=["empty", "ogg-junk", "zeros",
                                                              "truncated-header"])
def test_corrupt_files_are_not_audio(data: bytes) -> None:
    with pytest.raises(NotAudio):
        decode(data, 300, "audio/ogg")


def test_an_image_is_not_audio() -> None:
    with pytest.raises(NotAudio):
        decode(image_bytes(64, 64, fmt="JPEG"), 300, "audio/ogg")


def test_wav_for_a_server_is_16k_mono_pcm() -> None:
    clip = decode(voice_note(1.5), 300, "audio/ogg")
    with wave.open(io.BytesIO(to_wav(clip))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() == len(clip.samples)


@pytest.mark.parametrize("container, codec, rate, mime", [
    ("adts", "aac", 44_100, "audio/aac"),
    ("amr", "libopencore_amrnb", 8_000, "audio/amr"),
    ("mp3", "libmp3lame", 44_100, "audio/mpeg"),
    ("mp4", "aac", 44_100, "audio/mp4"),
    ("ogg", "libopus", 48_000, "audio/ogg; codecs=opus"),
], ids=["aac", "amr", "mp3", "mp4", "ogg-opus"])
def test_the_audio_types_whatsapp_lists_decode(container, codec, rate, mime) -> None:
    clip = decode(encode(2.0, container, codec, rate), 300, mime)
    assert clip.seconds == pytest.approx(2.0, abs=0.15) and not clip.is_silent()


def test_every_declared_type_forces_a_demuxer_that_opens_nothing_else() -> None:
    assert container_for("AUDIO/OGG; codecs=opus") == CONTAINERS["audio/ogg"]
    assert {demuxer for demuxer, _ in CONTAINERS.values()} == {"ogg", "mp4", "aac", "mp3", "amr"}
    with pytest.raises(NotAudio):
        container_for(None)
