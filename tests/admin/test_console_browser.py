"""The console in a real browser: Debian's Chromium driven by Playwright against the real app
(create_app with the console mounted) served by uvicorn on a loopback port, with a private Redis
and a SQLite log. Saves docs/admin-list.png and docs/admin-thread.png."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest
import redis

from bot.admin import mount_admin
from bot.cli.embedded_redis import free_port
from bot.kernel.settings import Settings
from bot.web.app import create_app
from storage.history import HistoryEntry, RedisHistory
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from tests.helpers.conversation_log import key_of, photo, sqlite_log, turn
from workers.images import make_thumbnail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "kopi-siew-dai 2026"

playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install playwright)")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)",
                allow_module_level=True)

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
BUDI = key_of("telegram", "5012345678", bot="7000001")
JOHN = key_of("telegram", "6011122233", bot="7000001")


def ago(**kw) -> dt.datetime:
    return NOW - dt.timedelta(**kw)


def seed(conversation_log: ConversationLog) -> None:
    """A small, realistic log: several platforms and languages, photos, a group, an error."""
    fruit = make_thumbnail(photo((120, 150, 60), (1280, 960)))
    market = make_thumbnail(photo((60, 110, 170), (960, 1280)))
    turn(conversation_log, key_of("whatsapp", "84901234567", bot="106540352242922"),
         "Cho tôi công thức nấu phở bò đơn giản.",
         "Phở bò: hầm xương bò 6–8 giờ với gừng và hành nướng, thêm quế, hồi, thảo quả. "
         "Chần bánh phở, xếp thịt bò tái, chan nước dùng thật nóng.",
         name="Nguyễn Thị Lan", language="vi", at=ago(days=3, hours=2), latency_ms=2140)
    turn(conversation_log, key_of("line", "U4af4980629a1b2c3", bot="line-bot"),
         "ช่วยแนะนำที่เที่ยวในเชียงใหม่หน่อยครับ",
         "ลองไปดอยสุเทพตอนเช้า เดินถนนคนเดินวันอาทิตย์ และกินข้าวซอยที่ร้านดังในเมืองครับ",
         name="สมชาย ใจดี", language="th", at=ago(days=2, hours=5), latency_ms=1830)
    turn(conversation_log, key_of("line", "U9cc1d2e3f4a5b6c7", bot="line-bot"),
         "Paano magluto ng adobong manok?",
         "Igisa ang bawang, ilagay ang manok, toyo, suka, paminta at dahon ng laurel. "
         "Pakuluan nang 30 minuto hanggang lumapot ang sarsa.",
         name="Maria Santos", language="tl", at=ago(days=1, hours=7), latency_ms=1575)
    turn(conversation_log, key_of("telegram", "-1001987654321", group=True, chat="-1001987654321"),
         "@sealion_bot apa menu buka puasa yang praktis?",
         "Kolak pisang, es buah, dan nasi uduk bisa disiapkan sejak siang.",
         language="id", at=ago(hours=20), latency_ms=2410)
    turn(conversation_log, key_of("whatsapp", "60123456789", bot="106540352242922"),
         "Boleh terangkan apa itu SEA-LION?", "",
         name="Ahmad bin Ismail", language="ms", at=ago(hours=9), latency_ms=600_000,
         error="TimeoutError: generation took longer than TURN_TIMEOUT_SECONDS")
    turn(conversation_log, JOHN, "What's the fastest MRT route from Changi Airport to Orchard?",
         "Take the East-West Line from Changi Airport, change at Tanah Merah, then transfer to "
         "the Thomson-East Coast Line at Gardens by the Bay for Orchard — about 50 minutes.",
         name="John Tan", language="en", at=ago(hours=4), latency_ms=1320, turn_id="john-1")
    turn(conversation_log, BUDI, "Ini foto durian dari pasar tadi pagi. Sudah matang belum?",
         "Dari fotonya, kulit durian tampak kuning kecokelatan dan durinya mulai renggang — "
         "tanda buahnya sudah matang. Coba cium pangkal buahnya: aroma yang kuat berarti siap "
         "dibuka.", name="Budi Santoso", language="id", images=[fruit],
         at=ago(hours=2, minutes=14), latency_ms=2875, turn_id="budi-1")
    turn(conversation_log, BUDI, "Kalau yang ini? Saya beli dua di pasar.",
         "Yang kedua juga terlihat matang. Simpan di tempat sejuk dan makan dalam 2–3 hari "
         "agar rasanya tetap manis.", name="Budi Santoso", language="id",
         images=[market, fruit], at=ago(hours=2, minutes=9), latency_ms=3120)
    turn(conversation_log, BUDI, "Terima kasih banyak!", "Sama-sama, Budi! Selamat menikmati "
         "duriannya. 🍈", name="Budi Santoso", language="id", at=ago(hours=2, minutes=5),
         latency_ms=940)
    # Ratings (#23): Budi liked the first answer (a button), John did not (a reaction).
    assert conversation_log.rate(BUDI, 1, "button", turn_id="budi-1") is not None
    assert conversation_log.rate(JOHN, -1, "reaction", turn_id="john-1") is not None


def seed_redis(client: redis.Redis, settings: Settings) -> RedisHistory:
    history = RedisHistory(client, ttl=settings.history_ttl_seconds,
                           max_turns=settings.history_max_turns)
    keys = KeyBuilder()
    for key in (BUDI, JOHN):
        image_id = history.save_image(key, photo())
        history.append(key, HistoryEntry(role="user", text="foto", image_ids=(image_id,)),
                       HistoryEntry(role="assistant", text="jawaban"))
        client.set(keys.language(key), "id")
        client.set(keys.language_pin(key), "id")
    return history


class Server:
    """uvicorn serving `app` on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture()
def console(tmp_path, redis_server) -> Iterator[dict]:
    redis_url = f"{redis_server.url[:-2]}/12"
    database = tmp_path / "log.db"
    conversation_log = sqlite_log(database)
    seed(conversation_log)
    settings = Settings(_env_file=None, environment="test", redis_url=redis_url,
                        database_url=f"sqlite:///{database}", admin_password=PASSWORD,
                        retention_days=90, data_dir=str(tmp_path))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    seed_redis(client, settings)
    app = create_app(settings)
    mount_admin(app, settings)  # a no-op if create_app already mounted it
    app.state.admin.throttle.base = 0.3
    with Server(app) as server:
        yield {"url": server.url, "log": conversation_log, "redis": client}
    client.flushdb()
    client.close()
    conversation_log.close()


@pytest.fixture()
def page(console):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 820},
                                      accept_downloads=True, locale="en-US")
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


def rows(page) -> list[str]:
    cells = page.locator("tr.conversation td:nth-child(2)").all()
    return [cell.inner_text().split("\n")[0] for cell in cells]


def test_the_console_in_a_browser(console, page):
    base = console["url"]
    DOCS.mkdir(exist_ok=True)

    # Anonymous: off to the login page. A wrong password is refused...
    page.goto(f"{base}/admin")
    assert page.url.startswith(f"{base}/admin/login")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text().startswith("Wrong username or password")
    # ... and the right one, once the delay has passed, lets us in.
    time.sleep(0.4)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin")
    assert page.locator("#total").inner_text() == "7"
    assert rows(page)[:2] == ["Budi Santoso", "John Tan"]
    assert "group -1001987654321" in rows(page)
    page.screenshot(path=str(DOCS / "admin-list.png"), full_page=True)

    # Search by a word.
    page.fill("input[name=q]", "durian")
    page.click("button:has-text('Apply')")
    assert rows(page) == ["Budi Santoso"]
    page.fill("input[name=q]", "เชียงใหม่")
    page.click("button:has-text('Apply')")
    assert rows(page) == ["สมชาย ใจดี"]

    # Filter: platform, then language.
    page.fill("input[name=q]", "")
    page.select_option("select[name=platform]", "line")
    page.click("button:has-text('Apply')")
    assert sorted(rows(page)) == ["Maria Santos", "สมชาย ใจดี"]
    page.select_option("select[name=platform]", "")
    page.select_option("select[name=language]", "id")
    page.click("button:has-text('Apply')")
    assert rows(page) == ["Budi Santoso", "group -1001987654321"]
    page.select_option("select[name=language]", "")
    page.select_option("select[name=rated]", "down")
    page.click("button:has-text('Apply')")
    assert rows(page) == ["John Tan"]
    page.select_option("select[name=rated]", "")
    page.select_option("select[name=language]", "id")
    page.click("button:has-text('Apply')")
    assert rows(page) == ["Budi Santoso", "group -1001987654321"]

    # The filtered set exported as CSV.
    with page.expect_download() as download:
        page.click("a:has-text('Export CSV')")
    table = list(csv.DictReader(io.StringIO(
        Path(download.value.path()).read_text("utf-8-sig"))))
    assert {r["user_name"] for r in table} == {"Budi Santoso", ""}
    assert len(table) == 8

    # Open Budi's thread: his photos are shown, served to the signed-in browser only.
    page.click("a:has-text('Budi Santoso')")
    page.wait_for_url(f"{base}/admin/conversations/*")
    images = page.locator(".msg.in img")
    assert images.count() == 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.in img')].every(i => i.complete && "
        "i.naturalWidth > 0)")
    assert page.locator(".msg.out").first.inner_text().startswith("Dari fotonya")
    assert "2,875 ms" in page.locator(".msg.out").first.inner_text()
    assert "rated 👍" in page.locator(".msg.out").first.inner_text()
    page.screenshot(path=str(DOCS / "admin-thread.png"), full_page=True)

    # Export this conversation as JSONL.
    with page.expect_download() as download:
        page.click("a:has-text('Export JSONL')")
    exported = [json.loads(line) for line in
                Path(download.value.path()).read_text("utf-8").splitlines()]
    assert len(exported) == 6
    assert exported[0]["text"].startswith("Ini foto durian") and exported[0]["images"] == 1
    assert {r["user_id"] for r in exported} == {BUDI.user_id}

    # Delete Budi everywhere, after the confirmation page.
    client, keys = console["redis"], KeyBuilder()
    assert client.keys(keys.conversation(BUDI, "*"))
    page.click("a:has-text('Delete this person')")
    page.wait_for_url(f"{base}/admin/people/delete*")
    assert "Delete the data of Budi Santoso?" in page.locator("h1").inner_text()
    page.click("button:has-text('Delete permanently')")
    page.wait_for_url(f"{base}/admin?deleted=*")
    assert "Deleted the data of" in page.locator(".notice").inner_text()
    assert "Budi Santoso" not in rows(page)
    assert page.locator("#total").inner_text() == "6"
    page.fill("input[name=q]", "durian")
    page.click("button:has-text('Apply')")
    assert rows(page) == []

    assert client.keys(keys.conversation(BUDI, "*")) == []
    # history, image, the image set, lang, pin
    assert len(client.keys(keys.conversation(JOHN, "*"))) == 5
    assert console["log"].person_conversations("telegram", BUDI.user_id) == []
    assert [r.key for r in console["log"].person_conversations("telegram", JOHN.user_id)] \
        == [JOHN]

    # Signed out, the photo route no longer answers.
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{base}/admin/login")
    response = page.request.get(f"{base}/admin/images/1")
    assert response.status == 401
