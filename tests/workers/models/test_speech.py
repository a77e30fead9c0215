"""Speech hosts: Whisper in process (a tiny random checkpoint, behind the one batcher) and an
OpenAI-compatible server (the loopback stand-in), behind one contract."""

from __future__ import annotations

import threading

import pytest

from tests.helpers.audio import line_audio, voice_note
from tests.helpers.transcription_api import TranscriptionStandIn
from workers.audio import decode
from workers.models.speech.base import RecogniserError, RecogniserUnavailable, our_language
from workers.models.speech.openai import OpenAIRecogniser
from workers.models.speech.transformers import TransformersRecogniser


@pytest.fixture(scope="module")
def whisper_path(tmp_path_factory):
    from tests.helpers.whisper import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny", max_new_tokens=8)


@pytest.fixture(scope="module")
def whisper(whisper_path):
    import torch

    # On the shared two-core machine more threads only fight: one is ten times faster here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # A clip waits up to 0.1 s for others: the clips of one call always share a batch here.
    recogniser = TransformersRecogniser(str(whisper_path), device="cpu", batch_size=8,
                                        max_batch=8, max_wait=0.1)
    recogniser.load()
    yield recogniser
    torch.set_num_threads(threads)


def _count_generate(recogniser: TransformersRecogniser) -> list[int]:
    """Wrap the model's generate to record each call's batch size (windows per call)."""
    model = recogniser._pipe.model
    original = model.generate
    sizes: list[int] = []

    def counting(*args, **kwargs):
        sizes.append(int(kwargs["input_features"].shape[0]))
        return original(*args, **kwargs)

    model.generate = counting
    return sizes


def test_our_language_maps_whisper_codes_and_names() -> None:
    assert our_language("th") == "th"
    assert our_language("<|id|>") == "id"
    assert our_language("english") == "en"
    assert our_language("Tagalog") == "tl"
    assert our_language("yue") == "zh"
    assert our_language("myanmar") == "my"
    assert our_language("de") is None and our_language(None) is None


def test_transformers_transcribes_real_features_and_detects_a_language(whisper) -> None:
    clip = decode(voice_note(2.0), 300, "audio/ogg")
    [code] = whisper._detect([clip])
    assert code  # a multilingual checkpoint: Whisper names a language (random weights: any)
    [transcript] = whisper.transcribe_batch([clip])
    assert transcript.text  # random weights: noise, but decoded words
    # Ours when we speak it, else none (the reply language then comes from the text).
    assert transcript.language == our_language(code)
    assert transcript.seconds > 0


def test_transformers_chunks_a_long_clip_into_30_second_windows(whisper) -> None:
    sizes = _count_generate(whisper)
    try:
        [long] = whisper.transcribe_batch([decode(voice_note(50.0), 300, "audio/ogg")])
    finally:
        del whisper._pipe.model.generate
    assert sum(sizes) >= 2  # 50 s in 30-second windows with overlap
    assert long.text


def test_transformers_batches_clips_and_windows_together(whisper) -> None:
    clips = [decode(voice_note(s), 300, "audio/ogg") for s in (1.0, 2.0, 3.0, 4.0)]
    sizes = _count_generate(whisper)
    try:
        transcripts = whisper.transcribe_batch(clips)
    finally:
        del whisper._pipe.model.generate
    assert len(transcripts) == 4
    # One language group per detected language; with a single language, one generate call.
    languages = {t.language for t in transcripts}
    assert len(sizes) <= len(languages) and sum(sizes) == 4
    assert {t.batch_size for t in transcripts} == {4}


def test_the_batcher_gathers_concurrent_callers(whisper) -> None:
    batching = whisper.batcher
    batching.max_wait, before = 0.5, batching.batches
    clips = [decode(voice_note(1.0 + i / 10), 300, "audio/ogg") for i in range(5)]
    results: list = [None] * len(clips)

    def call(i: int) -> None:
        results[i] = whisper.transcribe(clips[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(clips))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    batching.max_wait = 0.1
    assert all(r is not None and r.text for r in results)
    sizes = list(batching.batch_sizes)[-(batching.batches - before):]
    assert max(sizes) > 1 and sum(sizes) == 5
    assert max(r.batch_size for r in results) > 1


def test_a_failing_batch_fails_every_caller_and_the_next_batch_works(whisper) -> None:
    class Flaky(TransformersRecogniser):
        fail = True

        def _transcribe(self, clips):
            if self.fail:
                self.fail = False
                raise RecogniserError("RuntimeError: CUDA out of memory")
            return whisper._transcribe(clips)

    flaky = Flaky("unused", max_wait=0.0)
    with pytest.raises(RecogniserError, match="out of memory"):
        flaky.transcribe(decode(voice_note(1.0), 300, "audio/ogg"))
    assert flaky.transcribe(decode(voice_note(1.0), 300, "audio/ogg")).text


def test_a_missing_model_is_unavailable(tmp_path) -> None:
    missing = TransformersRecogniser(str(tmp_path / "nothing-here"), device="cpu")
    with pytest.raises(RecogniserUnavailable):
        missing.load()
    with pytest.raises(RecogniserUnavailable, match="failed to load"):
        missing.transcribe(decode(voice_note(1.0), 300, "audio/ogg"))  # at once, not again


@pytest.fixture()
def server():
    with TranscriptionStandIn(api_key="asr-key") as stand_in:
        yield stand_in
        assert stand_in.spec_errors == []


def test_openai_sends_16k_wav_and_reads_text_and_language(server) -> None:
    server.say(2.0, "สวัสดีครับ วันนี้อากาศดีไหม", "th")
    recogniser = OpenAIRecogniser(f"{server.base_url}/v1", "whisper-large-v3-turbo", "asr-key")
    transcript = recogniser.transcribe(decode(voice_note(2.0), 300, "audio/ogg"))
    assert transcript.text == "สวัสดีครับ วันนี้อากาศดีไหม" and transcript.language == "th"
    [call] = server.calls_to("transcriptions")
    assert (call.sample_rate, call.channels) == (16000, 1)
    assert call.fields["model"] == "whisper-large-v3-turbo"
    assert call.fields["response_format"] == "verbose_json"


def test_openai_falls_back_to_json_when_verbose_is_refused(server) -> None:
    server.refuse_verbose = True
    server.say(1.0, "Selamat pagi", "id")
    recogniser = OpenAIRecogniser(f"{server.base_url}/v1", "whisper", "asr-key")
    for _ in range(2):
        transcript = recogniser.transcribe(decode(line_audio(1.0), 300, "audio/m4a"))
        assert transcript.text == "Selamat pagi" and transcript.language is None
    formats = [c.fields["response_format"] for c in server.calls_to("transcriptions")]
    assert formats == ["verbose_json", "json", "json"]


def test_openai_wrong_key_and_no_server_are_unavailable(server) -> None:
    clip = decode(voice_note(1.0), 300, "audio/ogg")
    with pytest.raises(RecogniserUnavailable):
        OpenAIRecogniser(f"{server.base_url}/v1", "whisper", "wrong").transcribe(clip)
    with pytest.raises(RecogniserUnavailable):
        OpenAIRecogniser("http://127.0.0.1:9/v1", "whisper", timeout=2).transcribe(clip)


@pytest.mark.integration
def test_openai_module_needs_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            "import workers.models.speech.openai, workers.models.speech.base, workers.audio")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_settings_choose_the_backend(whisper_path) -> None:
    from bot.composition import Services
    from bot.kernel.settings import Settings

    def create_recogniser(settings: Settings):
        return Services(settings).speech()

    base = {"_env_file": None, "redis_url": "redis://127.0.0.1:1/0"}
    assert Settings(**base).effective_asr_backend == "transformers"
    assert Settings(**base, model_backend="openai",
                    openai_base_url="http://x/v1").effective_asr_backend == "off"
    assert Settings(**base, asr_base_url="http://asr/v1").effective_asr_backend == "openai"
    with pytest.raises(ValueError, match="ASR_BASE_URL"):
        Settings(**base, asr_backend="openai")
    served = create_recogniser(Settings(**base, asr_base_url="http://asr/v1",
                                        asr_model="whisper-large-v3-turbo"))
    assert isinstance(served, OpenAIRecogniser) and served.model == "whisper-large-v3-turbo"
    local = create_recogniser(Settings(**base, asr_model_id=str(whisper_path),
                                       engine_device="cpu"))
    assert isinstance(local, TransformersRecogniser)
    assert local.model_id == str(whisper_path) and local.health().state == "loading"
    with pytest.raises(RecogniserUnavailable):
        create_recogniser(Settings(**base, asr_backend="off"))
