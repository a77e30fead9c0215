"""Decoders with a declared budget (#18, items 2, 6 and 7), and the memory and time fence
around them.

Audio goes through `workers.turn.hearing.gather`, the I/O worker's step, with the real PyAV. Its
resampler is watched (`watched_resampler`): a frame whose output would pass the clip's budget,
or one at a sample rate under 8 kHz, fails the test instead of being resampled, so the old
code's gigabytes are never allocated here; the budget has to be checked before that work.
Images go through `workers.images.prepare_image`, the turn service's `fetch_images`, and the
real webhook -> Celery worker path. The fence is `workers.decoding.DecodeSandbox`: real
processes under a real `RLIMIT_AS`.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
from PIL import Image

from bot.kernel.messages import (
    Attachment,
    AttachmentKind,
    ConversationKey,
    InboundMessage,
    Platform,
)
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.conftest import new_chat_id
from tests.helpers.audio import line_audio, voice_note
from tests.helpers.hostile_audio import (
    ffconcat,
    flac_in_ogg,
    lying_ogg,
    opus_channels,
    tiny_flac,
    vorbis_1hz,
)
from tests.helpers.images import image_bytes
from tests.helpers.updates import text_update
from tests.helpers.waiting import wait_replies
from tests.test_hostile_media_end_to_end import document_update
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.protocol import Heard, Problem, TurnPlan
from workers.turn import assemble
from workers.turn.hearing import gather, notices

# Decoding runs in the sandbox's processes.
pytestmark = pytest.mark.integration

KEY = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="18", user_id="18")
RATE = 16_000


def note(mime_type: str, ref: str = "note") -> InboundMessage:
    return InboundMessage(key=KEY, event_id=ref, message_id=ref, language_hint="en",
                          attachments=(Attachment(kind=AttachmentKind.AUDIO, ref=ref,
                                                  mime_type=mime_type),))


def hear(data: bytes, mime_type: str, max_seconds: float = 300, **kwargs) -> Heard:
    """One voice note through the I/O worker's step; what it made of it."""
    [heard] = gather([note(mime_type)], lambda _: data, lambda *_: None, max_seconds, **kwargs)
    return heard


@pytest.fixture()
def watched_resampler(monkeypatch):
    """PyAV's resampler, watched: returns the list of output sizes (samples) it was asked for,
    and fails the test, before any allocation, for a frame under 8 kHz or one that takes the
    total past `watched.limit` samples."""
    import av

    real = av.AudioResampler
    asked: list[float] = []

    class Watched:
        limit = float("inf")

        def __init__(self, *args, **kwargs) -> None:
            self._real = real(*args, **kwargs)

        def resample(self, frame):
            if frame is not None:
                asked.append(frame.samples * RATE / frame.sample_rate)
                assert frame.sample_rate >= 8000, f"resampling {frame.sample_rate} Hz x16,000"
                assert sum(asked) <= Watched.limit, "resampled past the clip's budget"
            return self._real.resample(frame)

    monkeypatch.setattr(av, "AudioResampler", Watched)
    asked_for = asked
    yield asked_for, Watched


# ---------------------------------------------------------------- item 2: rates, channels, length
def test_the_55_byte_flac_is_refused_before_any_resampling(watched_resampler):
    asked, _ = watched_resampler
    flac = tiny_flac()
    assert len(flac) == 55
    started = time.perf_counter()
    # As a Telegram voice note, as a Telegram audio file, as WhatsApp audio, and as FLAC in Ogg
    # (a codec Ogg may carry that no voice note uses): never read, whatever it claims to be.
    heard = [hear(flac, "audio/ogg"), hear(flac, "audio/flac"), hear(flac, "audio/mpeg"),
             hear(flac_in_ogg(tiny_flac(samples=2048)), "audio/ogg", max_seconds=3600)]
    assert [h.problem for h in heard] == [Problem.UNREADABLE] * 4
    assert asked == [] and time.perf_counter() - started < 2


def test_a_1_hz_stream_in_a_voice_note_container_is_refused(watched_resampler):
    """Vorbis in Ogg is a voice note's container and codec: only the sample rate stops it
    (2,048 s declared, under the limit, so the declared length does not)."""
    asked, _ = watched_resampler
    vorbis = vorbis_1hz(samples=2048)
    assert len(vorbis) < 4096
    heard = hear(vorbis, "audio/ogg; codecs=vorbis", max_seconds=3600)
    assert heard.problem == Problem.UNREADABLE and asked == []
    assert notices([heard], "th", 3600) == [text(Text.AUDIO_UNREADABLE, "th")]


def test_more_than_eight_channels_are_refused():
    many = hear(opus_channels(16), "audio/ogg; codecs=opus")
    surround = hear(opus_channels(8), "audio/ogg; codecs=opus")  # 7.1: still a sound file
    assert many.problem == Problem.UNREADABLE
    assert surround.problem is None and surround.seconds == pytest.approx(0.4, abs=0.05)


def test_a_length_the_header_hides_is_held_to_the_budget_before_each_frame(watched_resampler):
    """The header says one second (so the declared-length check lets it through, as it does
    a missing length); the running total decides, and the frame that would pass the limit is
    refused before it is resampled, not after."""
    asked, watched = watched_resampler
    watched.limit = 3 * RATE
    heard = hear(lying_ogg(8.0, claimed=1.0), "audio/ogg", max_seconds=3)
    assert heard.problem == Problem.TOO_LONG and 3.0 < heard.seconds <= 3.1
    assert 2.9 * RATE < sum(asked) <= 3 * RATE
    assert notices([heard], "vi", 3) == [text(Text.AUDIO_TOO_LONG, "vi", minutes="0.05")]


# ---------------------------------------------------------------- item 7: the demuxer is forced
@pytest.mark.parametrize("mime", ["audio/ogg", "audio/mpeg", "audio/aac", "audio/mp4",
                                  "audio/amr"])
def test_an_ffconcat_playlist_never_opens_another_file(mime, tmp_path, monkeypatch):
    """The playlist names a file beside the worker (its working directory). That file is a
    FIFO: anything that opens it to read is seen (and fed a real voice note, as a file
    there would)."""
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.ogg"
    os.mkfifo(secret)
    opened_by_decoder: list[bool] = []
    closing = threading.Event()

    def feed() -> None:
        with open(secret, "wb") as writer:  # returns once a reader opened the FIFO
            opened_by_decoder.append(not closing.is_set())
            if not closing.is_set():
                writer.write(voice_note(2.0))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        heard = hear(ffconcat(secret.name), mime)
    finally:
        closing.set()
        unblock = os.open(secret, os.O_RDONLY | os.O_NONBLOCK)
        feeder.join(5)
        os.close(unblock)
    assert opened_by_decoder == [False], "the decoder opened a file the playlist named"
    assert heard.problem == Problem.UNREADABLE


@pytest.mark.parametrize("data, mime", [
    (line_audio(2.0), "audio/ogg"),  # an M4A called OGG is not probed into an M4A
    (voice_note(2.0), "audio/flac"),  # types no platform sends for a voice note
    (voice_note(2.0), "application/octet-stream"),
    (voice_note(2.0), "video/mp4"),
], ids=["m4a-as-ogg", "flac", "octet-stream", "video"])
def test_the_declared_type_chooses_the_demuxer_and_unknown_types_are_not_read(data, mime):
    heard = hear(data, mime)
    assert heard.problem == Problem.UNREADABLE
    assert notices([heard], "ms", 300) == [text(Text.AUDIO_UNREADABLE, "ms")]


# ---------------------------------------------------------------- item 6: photo formats only
@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PPM", "ICO", "TGA", "PCX", "SGI", "IM"])
def test_only_photo_formats_are_opened(fmt):
    from workers.images import ImageUnreadable, prepare_image

    with pytest.raises(ImageUnreadable):
        prepare_image(image_bytes(64, 48, fmt=fmt), 1024 * 1024)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "AVIF"])
def test_photo_formats_are_still_read_in_a_decode_process(fmt):
    from workers.decoding import DecodeSandbox
    from workers.images import FORMATS

    if fmt not in FORMATS:
        pytest.skip(f"this Pillow reads no {fmt}")
    sandbox = DecodeSandbox(memory_bytes=256 * 1024 * 1024, seconds=30, processes=1)
    try:
        prepared = sandbox.image(image_bytes(64, 48, fmt=fmt), 1024 * 1024)
    finally:
        sandbox.close()
    with Image.open(io.BytesIO(prepared.model_jpeg)) as seen:
        assert seen.size == (64, 48)


@pytest.mark.integration
def test_an_eps_photo_never_starts_ghostscript(tmp_path):
    """A `gs` on the PATH notes each start (and would hang a while, as a hostile one can);
    the EPS is refused quickly and it is never started."""
    eps = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(eps, "EPS")
    (tmp_path / "photo.eps").write_bytes(eps.getvalue())
    fake = tmp_path / "bin" / "gs"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "gs-started"}\n'
                    'case "$1" in --version) echo 10.0;; *) sleep 5;; esac\n')
    fake.chmod(0o755)
    script = textwrap.dedent(f"""
        import json, time
        from pathlib import Path
        from workers.images import ImageUnreadable, prepare_image
        data = Path({str(tmp_path / "photo.eps")!r}).read_bytes()
        started = time.perf_counter()
        try:
            prepare_image(data, 1024 * 1024)
            outcome = "decoded"
        except ImageUnreadable:
            outcome = "refused"
        print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - started}}))
    """)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env=env, check=True)
    report = result.stdout.strip().splitlines()[-1]
    assert '"outcome": "refused"' in report
    assert not (tmp_path / "gs-started").exists(), "Ghostscript was started"
    assert float(report.rsplit(":", 1)[1].strip(" }")) < 1.0


@pytest.mark.e2e  # it runs the worker process
def test_a_telegram_document_with_an_image_type_is_read_by_its_bytes(qwen_service, telegram):
    """The sender says image/jpeg; the bytes are a TIFF (a format we do not open): the person
    gets "I couldn't read this image", not an answer about it, and the chat goes on."""
    chat = new_chat_id()
    tiff = image_bytes(320, 240, fmt="TIFF")
    file_id = f"doc-{chat}"
    telegram.add_file(file_id, tiff, file_path=f"documents/{file_id}.jpg")
    update = document_update(chat, file_id, "image/jpeg", len(tiff))
    assert qwen_service.post_update(update).status_code == 200
    [notice] = wait_replies(telegram, chat, 1)
    assert notice.params["text"] == text(Text.IMAGE_UNREADABLE, "id")
    assert qwen_service.post_update(text_update(chat, "Halo, apa kabar?")).status_code == 200
    replies = [c.params["text"] for c in wait_replies(telegram, chat, 2)]
    assert replies[0] == notice.params["text"] and replies[1].strip()


# ---------------------------------------------------------------- the fence: memory and time
def _white_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), "white").save(out, "PNG")
    return out.getvalue()


class PhotoAdapter(RecordingAdapter):
    photos: dict[str, bytes] = {}

    async def fetch_media(self, ref: str, size: int | None = None) -> bytes:
        return self.photos[ref]


def test_a_decode_over_the_memory_bound_fails_in_its_process_and_the_turn_says_so(
        redis_server, tmp_path):
    """A 36-megapixel PNG (legal: under MAX_IMAGE_PIXELS) needs about 150 MB decoded; with
    DECODE_MEMORY_MB=64 its decode process cannot have it. The turn gets the notice, and the
    next photo, in the same turn, is read by the same decode processes."""
    client = redis.Redis.from_url(redis_server.url[:-2] + "/12")
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(redis_url=redis_server.url[:-2] + "/12", database_url=database_url,
                        decode_memory_mb=64, decode_processes=1)
    PhotoAdapter.photos = {"big": _white_png(6000), "small": image_bytes(640, 480, fmt="JPEG")}
    store = ConversationStore(client, lease_seconds=30)
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()
    service = assemble(settings, store=store,
                       history=RedisHistory(client, ttl=600, max_turns=20),
                       conversation_log=log, metrics=RedisMetrics(client),
                       adapters=lambda platform: PhotoAdapter(settings),
                       engine=lambda: ScriptedEngine("-"), run=loop.run_until_complete,
                       leases=LeaseKeeper(store, max_hold_seconds=60))
    try:
        chat = str(new_chat_id())
        key = KEY.model_copy(update={"chat_id": chat, "user_id": chat})
        plan = TurnPlan(turn_id=f"t-{chat}", key=key, language="th", attachments=(
            Attachment(ref="big", mime_type="image/png"),
            Attachment(ref="small", mime_type="image/jpeg")))
        photos, notices_ = service.stages.media.fetch(plan)
        assert notices_ == (text(Text.IMAGE_UNREADABLE, "th"),)
        assert len(photos.image_ids) == 1  # the small one, after the big one failed
    finally:
        loop.close()
        log.close()
        client.close()


def test_documents_are_read_in_a_decode_process_within_their_budget():
    """A file sent in chat (#22) is read in a decode process: a scanned page of 200 x 300
    inches comes back rendered within the pixel budget, an encrypted PDF's problem crosses back
    as such, a pixel budget lifted past reason still meets the longest side's, and the next
    file is read by the same process."""
    from tests.helpers.documents import encrypted_pdf, scanned_pdf, text_pdf
    from workers.decoding import DecodeSandbox
    from workers.documents import ChatBudget, DocumentError, read_for_chat
    from workers.documents import Problem as DocumentProblem

    budget = ChatBudget(max_bytes=20 * 1024 * 1024, max_chars=6000, max_pages=5,
                        max_pixels=1024 * 1024)
    sandbox = DecodeSandbox(memory_bytes=256 * 1024 * 1024, seconds=60, processes=1)
    try:
        poster = sandbox.run(read_for_chat, scanned_pdf(size=(2000, 3000), resolution=10),
                             "poster.pdf", None, budget)
        [page] = poster.images
        with Image.open(io.BytesIO(page.model_jpeg)) as image:
            assert image.width * image.height <= 1024 * 1024
        with pytest.raises(DocumentError) as caught:
            sandbox.run(read_for_chat, encrypted_pdf(), "results.pdf", None, budget)
        assert caught.value.problem is DocumentProblem.ENCRYPTED
        # A pixel budget lifted far past reason still meets MAX_RENDER_SIDE (2400 pixels).
        lifted = sandbox.run(read_for_chat, scanned_pdf(size=(2000, 3000), resolution=10),
                             "poster.pdf", None,
                             ChatBudget(max_bytes=budget.max_bytes, max_chars=6000,
                                        max_pixels=400_000_000))
        with Image.open(io.BytesIO(lifted.images[0].model_jpeg)) as image:
            assert max(image.size) <= 2400
        text = sandbox.run(read_for_chat, text_pdf(["The clinic opens at eight."]), "a.pdf",
                           None, budget)
        assert text.text == "[page 1] The clinic opens at eight."
    finally:
        sandbox.close()


def test_an_audio_decode_over_the_memory_bound_is_a_notice_and_the_next_is_heard():
    from workers.decoding import DecodeSandbox

    sandbox = DecodeSandbox(memory_bytes=24 * 1024 * 1024, seconds=60, processes=1)
    try:
        # Five minutes decode to 19 MB of samples, held about twice: over 24 MB.
        long = hear(voice_note(290.0, "silence"), "audio/ogg", decode=sandbox.audio)
        short = hear(voice_note(2.0), "audio/ogg", decode=sandbox.audio)
    finally:
        sandbox.close()
    assert long.problem == Problem.UNREADABLE
    assert short.problem is None and short.seconds == pytest.approx(2.0, abs=0.1)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _pid() -> int:
    return os.getpid()


def test_a_decode_past_its_time_is_killed_and_one_that_dies_is_replaced():
    from workers.decoding import DecodeCrashed, DecodeSandbox, DecodeTimedOut

    sandbox = DecodeSandbox(memory_bytes=256 * 1024 * 1024, seconds=1, processes=1)
    try:
        first = sandbox.run(_pid)
        assert first != os.getpid()
        started = time.perf_counter()
        with pytest.raises(DecodeTimedOut):
            sandbox.run(time.sleep, 60)
        assert time.perf_counter() - started < 10
        assert not _alive(first), "the process past its time still runs"
        second = sandbox.run(_pid)
        with pytest.raises(DecodeCrashed):
            sandbox.run(_die)
        assert sandbox.run(_pid) not in (first, second)
    finally:
        sandbox.close()


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a parent that no longer reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_decode_processes_die_with_their_worker(signum):
    """A worker with its decode processes up, one of them busy, is killed: none outlives it."""
    script = textwrap.dedent("""
        import threading, time
        from workers.decoding import DecodeSandbox
        sandbox = DecodeSandbox(memory_bytes=256 * 1024 * 1024, seconds=120, processes=2)
        sandbox.run(len, b"up")
        threading.Thread(target=sandbox.run, args=(time.sleep, 120), daemon=True).start()
        time.sleep(1)
        print("ready", flush=True)
        time.sleep(120)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        around = {pid for pid in _descendants(worker.pid) if _alive(pid)}
        assert len(around) >= 3  # the forkserver and two decode processes (one busy)
        worker.send_signal(signum)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in around) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in around if _alive(pid)] == []
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
