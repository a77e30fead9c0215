"""/admin/insights and /admin/insights.json over HTTP against the real app (create_app with the
console, Redis the in-process twin, the log a SQLite file): the session they need, the range they
parse (the last 30 days by default; 400 for a wrong one), the JSON's shape and figures, and the
page's charts (inline SVG, no script)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from bot.admin.insights import parse_scope
from bot.admin.security import SessionStore
from bot.web.app import create_app
from storage.log import ConversationLog
from tests.helpers.console import login, settings_for
from tests.helpers.conversation_log import sqlite_log
from tests.helpers.twins import twin_redis
from tests.storage.log.test_insights import D1, D2, D3, seed

QUERY = f"from={D1}&to={D3}"


@pytest.fixture()
def seeded(tmp_path) -> ConversationLog:
    conversation_log = sqlite_log(tmp_path / "log.db")
    seed(conversation_log)
    yield conversation_log
    conversation_log.close()


@pytest.fixture()
def anonymous(tmp_path, seeded) -> TestClient:
    settings = settings_for(tmp_path, "redis://127.0.0.1:1/0")  # never reached: the twin is
    app = create_app(settings)
    state = app.state.admin
    redis = twin_redis()
    app.state.admin = dataclasses.replace(state, redis=redis,
                                          sessions=SessionStore(redis, state.keys))
    return TestClient(app, follow_redirects=False)


@pytest.fixture()
def signed_in(anonymous) -> TestClient:
    assert login(anonymous).status_code == 303
    return anonymous


def test_both_need_the_session(anonymous):
    page = anonymous.get(f"/admin/insights?{QUERY}")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login?next=/admin/insights")
    data = anonymous.get(f"/admin/insights.json?{QUERY}")
    assert data.status_code == 401 and "conversations" not in data.text


def test_the_json_carries_every_level(signed_in):
    response = signed_in.get(f"/admin/insights.json?{QUERY}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["from"], body["to"], body["platform"], body["language"]) == \
        (str(D1), str(D3), None, None)
    assert set(body) == {"from", "to", "platform", "language", "days_in",
                         "latency_percentiles", "total", "days", "platforms", "languages",
                         "rows"}
    assert body["total"] == {
        "conversations": 7, "people": 8, "turns": 32, "answers": 29, "thumbs_up": 5,
        "thumbs_down": 2, "ratings": 7, "satisfaction": 0.7143, "latency_p50_ms": 800,
        "latency_p95_ms": 1900, "guard_flags": 3, "handoffs": 1, "operator_replies": 2,
        "voice_notes": 3, "photos": 2, "voice_share": 0.0938, "photo_share": 0.0625}
    assert [d["day"] for d in body["days"]] == [str(D1), str(D2), str(D3)]
    assert [d["turns"] for d in body["days"]] == [6, 23, 3]
    per_language = {row["language"]: row for row in body["languages"]}
    assert {lang: (r["thumbs_up"], r["thumbs_down"], r["satisfaction"])
            for lang, r in per_language.items() if r["ratings"]} == {
        "en": (2, 1, 0.6667), "th": (0, 1, 0.0), "vi": (3, 0, 1.0)}
    assert [p["platform"] for p in body["platforms"]] == ["line", "telegram", "whatsapp"]
    first = body["rows"][0]
    assert (first["day"], first["platform"], first["language"], first["turns"],
            first["latency_p95_ms"]) == (str(D1), "line", "th", 2, 700)
    assert len(body["rows"]) == 7
    assert set(first) == set(body["total"]) | {"day", "platform", "language"}
    filtered = signed_in.get(f"/admin/insights.json?{QUERY}&platform=line&language=th").json()
    assert (filtered["platform"], filtered["language"]) == ("line", "th")
    assert filtered["total"]["turns"] == 2 and filtered["total"]["thumbs_down"] == 1


def test_the_default_range_is_the_last_30_days(signed_in):
    body = signed_in.get("/admin/insights.json").json()
    today = dt.datetime.now(dt.UTC).date()
    assert (body["from"], body["to"]) == (str(today - dt.timedelta(days=29)), str(today))
    assert len(body["days"]) == 30
    assert body["total"]["turns"] == 0  # the seeded days are in March 2026
    only_to = signed_in.get(f"/admin/insights.json?to={D3}").json()
    assert only_to["from"] == str(D3 - dt.timedelta(days=29))
    assert only_to["total"]["turns"] == 32 + 1  # and the turn the day before D1


@pytest.mark.parametrize(("query", "says"), [
    ("from=2026-13-01", "from: a date"),
    ("to=yesterday", "to: a date"),
    (f"from={D3}&to={D1}", "ends before it starts"),
    ("from=2024-01-01&to=2026-01-01", "longer than 366 days"),
    ("platform=icq", "platform: one of"),
    ("language=%3Cscript%3E", "language: a language code"),
    ("language=" + "x" * 17, "language: a language code"),
])
def test_a_wrong_parameter_is_a_400(signed_in, query, says):
    data = signed_in.get(f"/admin/insights.json?{query}")
    assert data.status_code == 400 and says in data.json()["detail"]
    page = signed_in.get(f"/admin/insights?{query}")
    assert page.status_code == 400 and says in page.text
    assert "<script>" not in page.text


def test_the_page_draws_its_charts_without_a_script(signed_in):
    response = signed_in.get(f"/admin/insights?{QUERY}")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    html = response.text
    assert '<a href="/admin/insights">Insights</a>' in html  # the navigation's link
    assert html.count('<svg class="chart') == 6
    assert "<script" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handler either
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing from elsewhere
    assert 'id="total-turns">32<' in html and 'id="total-satisfaction">71%<' in html
    assert 'id="total-p50">800 ms<' in html
    assert "Turns per day, by platform" in html and "Satisfaction by language" in html
    # The satisfaction bars: one per rated language, with its counts.
    assert "en: 67% · 👍 2 👎 1" in html and "vi: 100% · 👍 3 👎 0" in html
    assert html.count('<tr><td><span class="lang">') == 6  # the languages' table
    assert f'href="/admin/insights.json?from={D1}&amp;to={D3}"' in html


def test_parse_scope_defaults():
    today = dt.date(2026, 12, 2)
    scope = parse_scope(None, None, "", "", today=today)
    assert (scope.start, scope.end, scope.platform, scope.language) == \
        (dt.date(2026, 11, 3), today, None, None)
    assert len(scope.days) == 30
    assert parse_scope("2026-12-02", "2026-12-02", "line", "th", today=today).days == [today]


def test_a_range_without_messages_still_draws_its_charts(signed_in):
    response = signed_in.get("/admin/insights?from=2025-01-01&to=2025-01-31")
    assert response.status_code == 200
    assert response.text.count('<svg class="chart') == 6
    assert 'id="total-turns">0<' in response.text and 'id="total-p50">—<' in response.text
    assert response.text.count("Nothing in this range.") == 3
