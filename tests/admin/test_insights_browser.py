"""The insights page in a real browser (Debian's Chromium via Playwright, the console served by
uvicorn, the fixtures' ways of test_console_browser.py): reached from the navigation, its six
charts drawn (inline SVG, nothing fetched, no script) under the console's CSP with no violation
and no console error, the figures those of the log, a filter applied. Saves
docs/admin-insights.png."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest
import redis

from bot.admin import mount_admin
from bot.kernel.settings import Settings
from bot.web.app import create_app
from storage.log import ConversationLog, GuardRecord, InsightsRange
from tests.admin.test_console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DOCS,
    PASSWORD,
    Server,
    playwright_api,
)
from tests.helpers.conversation_log import key_of, sqlite_log
from tests.storage.log.test_insights import Seeder

pytestmark = pytest.mark.e2e

#: (platform, language, people): who writes to the bot in the seeded log.
AUDIENCE = (("telegram", "en", 3), ("telegram", "id", 3), ("telegram", "ms", 2),
            ("line", "th", 3), ("line", "tl", 2), ("whatsapp", "vi", 3), ("whatsapp", "id", 2))
DAYS = 14
#: Records a CSP violation, should the page cause one (an init script runs before the page's).
WATCH_CSP = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def seed(conversation_log: ConversationLog) -> None:
    """Two weeks of a small service: three platforms, six languages, latencies of one to eight
    seconds, 👍 and 👎 (Thai answers rated lower), a few flags, voice notes (mostly on
    WhatsApp), photos, and a hand-off answered by an operator."""
    rng = random.Random(23)
    s = Seeder(conversation_log)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for days_ago in range(DAYS - 1, -1, -1):
        for platform, language, people in AUDIENCE:
            for person in range(people):
                key = key_of(platform, f"{platform[:2]}{language}{person}")
                for _ in range(rng.choice((0, 1, 1, 2, 3))):
                    when = now - dt.timedelta(days=days_ago, minutes=rng.randrange(5, 600))
                    latency = int(rng.lognormvariate(7.6, 0.45))
                    flagged = rng.random() < 0.04
                    turn_id = s.turn(
                        key, when, language=language, latency=latency,
                        photo=rng.random() < 0.12,
                        voice=rng.random() < (0.3 if platform == "whatsapp" else 0.05),
                        input_guard=GuardRecord("unsafe") if flagged else None)
                    if rng.random() < 0.45:
                        good = 0.55 if language == "th" else 0.85
                        s.rate(turn_id, 1 if rng.random() < good else -1,
                               when + dt.timedelta(minutes=1))
    held = key_of("line", "lith0")  # a Thai person on LINE asked for one
    s.operator(held, now - dt.timedelta(days=2, hours=1), "th")
    s.operator(held, now - dt.timedelta(days=2), "th")


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
    app = create_app(settings)
    mount_admin(app, settings)
    with Server(app) as server:
        yield {"url": server.url, "log": conversation_log}
    client.flushdb()
    client.close()
    conversation_log.close()


@pytest.fixture()
def browser_page(console) -> Iterator[tuple]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.add_init_script(WATCH_CSP)
        tab = context.new_page()
        tab.set_default_timeout(20_000)
        problems: list[str] = []
        tab.on("console", lambda m: problems.append(
            f"console {m.type}: {m.text} ({m.location.get('url')})")
            if m.type in ("error", "warning") else None)
        tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("response", lambda r: problems.append(f"{r.status} {r.url}")
               if r.status >= 400 else None)
        yield tab, problems, requests
        context.close()
        browser.close()


def test_the_insights_page_in_a_browser(console, browser_page):
    page, problems, requests = browser_page
    base = console["url"]
    page.goto(f"{base}/admin/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin")

    requests.clear()
    problems.clear()
    page.click("header nav a:has-text('Insights')")
    page.wait_for_url(f"{base}/admin/insights")
    expected = console["log"].insights(InsightsRange.last(30)).total
    assert expected.turns > 100 and expected.ratings > 30 and expected.handoffs == 1

    # The charts: six inline SVGs, laid out with a real size, with their marks drawn.
    charts = page.locator("svg.chart")
    assert charts.count() == 6
    for n in range(6):
        box = charts.nth(n).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, n
    assert page.locator("svg.chart.bars rect").count() >= DAYS  # a bar a day (and legend)
    assert page.locator("svg.chart.line polyline").count() >= 6  # two lines a line chart
    assert page.locator("svg.chart.shares rect").count() == 6  # a bar a rated language
    assert page.evaluate("document.querySelectorAll('script').length") == 0

    # The figures are the log's.
    assert page.locator("#total-turns").inner_text() == f"{expected.turns:,}"
    assert page.locator("#total-satisfaction").inner_text() == \
        f"{expected.satisfaction * 100:.0f}%"
    assert page.locator("#total-p50").inner_text() == f"{expected.latency_p50_ms:,} ms"
    assert page.locator("#total-handoffs").inner_text() == "1"
    languages = page.locator("#by-language tbody tr td:first-child").all_inner_texts()
    assert languages == ["en", "id", "ms", "th", "tl", "vi"]

    # Nothing fetched but the page itself; no CSP violation, no console error.
    assert requests == [f"{base}/admin/insights"]
    assert page.evaluate("window.__violations") == []
    assert problems == []

    bottom = page.locator("#by-platform").bounding_box()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "admin-insights.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280,
                          "height": bottom["y"] + bottom["height"] + 24})

    # A filter: LINE only; the JSON link carries the same range.
    page.select_option("select[name=platform]", "line")
    page.click("button:has-text('Apply')")
    page.wait_for_url(f"{base}/admin/insights?*platform=line*")
    line = console["log"].insights(InsightsRange.last(30, platform="line")).total
    assert page.locator("#total-turns").inner_text() == f"{line.turns:,}"
    assert page.locator("#by-platform tbody tr").count() == 1
    assert "platform=line" in page.locator("a#json").get_attribute("href")
    body = page.request.get(page.locator("a#json").get_attribute("href").replace(
        "/admin", f"{base}/admin", 1)).json()
    assert body["platform"] == "line" and body["total"]["turns"] == line.turns
    assert page.evaluate("window.__violations") == [] and problems == []
