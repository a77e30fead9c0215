"""The console's Insights page (issue 23): the log's figures per day, platform and language over a
range of days (`storage.log.insights`), drawn as inline SVG charts (`bot.admin.charts`) and
tables, and the same figures as JSON.

    GET /admin/insights        the page (a session, else the login)
    GET /admin/insights.json   the figures (a session, else 401)

Query parameters, all optional: `from` and `to` (UTC days, YYYY-MM-DD, both included; by default
the last 30 days, today included), `platform`, `language` ("unknown": messages without one).
A malformed or impossible one answers 400.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup

from bot.admin.charts import Series, line_chart, share_bars, stacked_bars
from bot.admin.routes import (
    DataSession,
    PageSession,
    _query,
    _render,
    _state,
    router,
    templates,
)
from bot.kernel.messages import Platform
from storage.log import Insights, InsightsRange
from storage.log.insights import MAX_DAYS, by_day_and

DEFAULT_DAYS = 30
_LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,16}")
PLATFORM_COLORS = {"telegram": "#229ed9", "line": "#06c755", "whatsapp": "#128c7e",
                   "web": "#5b4bb7"}


def parse_scope(date_from: str | None, date_to: str | None, platform: str | None,
                language: str | None, *, today: dt.date | None = None) -> InsightsRange:
    """The range the query asks for; HTTPException 400 with the reason when it cannot be."""
    today = today or dt.datetime.now(dt.UTC).date()

    def day(value: str | None, name: str) -> dt.date | None:
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise HTTPException(400, f"{name}: a date as YYYY-MM-DD, not {value[:20]!r}") \
                from None

    end = day(date_to, "to") or today
    start = day(date_from, "from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if platform and platform not in {p.value for p in Platform}:
        raise HTTPException(400, f"platform: one of {', '.join(p.value for p in Platform)}")
    if language and not _LANGUAGE.fullmatch(language):
        raise HTTPException(400, "language: a language code (letters, digits, '-')")
    try:
        return InsightsRange(start, end, platform or None, language or None)
    except ValueError as exc:
        raise HTTPException(400, f"{exc} (from {start}, to {end}; at most {MAX_DAYS} days)") \
            from None


def insights_json(found: Insights) -> dict[str, Any]:
    """/admin/insights.json: the range, then every level's figures (`Figures.as_dict`)."""
    scope = found.range
    return {
        "from": scope.start.isoformat(), "to": scope.end.isoformat(),
        "platform": scope.platform, "language": scope.language,
        "days_in": "UTC", "latency_percentiles": "nearest rank",
        "total": found.total.as_dict(),
        "days": [{"day": day.isoformat(), **f.as_dict()} for day, f in found.days],
        "platforms": [{"platform": p, **f.as_dict()} for p, f in found.platforms.items()],
        "languages": [{"language": lang, **f.as_dict()} for lang, f in found.languages.items()],
        "rows": [{"day": r.day.isoformat(), "platform": r.platform, "language": r.language,
                  **r.figures.as_dict()} for r in found.rows],
    }


def _seconds(value: int | None) -> float | None:
    return None if value is None else round(value / 1000, 2)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def charts(found: Insights) -> list[tuple[str, Markup]]:
    """The page's charts, each with its heading."""
    labels = [day.strftime("%m-%d") for day, _ in found.days]
    days = [f for _, f in found.days]
    turns = by_day_and(found, "platform", "turns")
    satisfaction = [
        (lang, f.satisfaction,
         f"{_share_text(f.satisfaction)} · 👍 {f.thumbs_up} 👎 {f.thumbs_down}")
        for lang, f in found.languages.items() if f.ratings]
    return [
        ("Turns per day, by platform", stacked_bars(
            "Turns per day, by platform", labels,
            [Series(p, values, PLATFORM_COLORS.get(p, "")) for p, values in turns.items()])),
        ("Conversations and people per day", line_chart(
            "Conversations and people per day", labels,
            [Series("conversations", [f.conversations for f in days]),
             Series("people", [f.people for f in days], "#e37400")])),
        ("Answer latency per day", line_chart(
            "Answer latency per day (seconds)", labels,
            [Series("p50", [_seconds(f.latency_p50_ms) for f in days], "#188038"),
             Series("p95", [_seconds(f.latency_p95_ms) for f in days], "#c8102e")], unit=" s")),
        ("Satisfaction by language", share_bars("Satisfaction by language (👍 share)",
                                                 satisfaction)),
        ("Guard flags and hand-offs per day", line_chart(
            "Guard flags and hand-offs per day", labels,
            [Series("guard flags", [f.guard_flags for f in days], "#b3261e"),
             Series("hand-offs", [f.handoffs for f in days], "#5b4bb7")])),
        ("Voice notes and photos, share of turns", line_chart(
            "Voice notes and photos, share of turns per day (%)", labels,
            [Series("voice notes", [_percent(f.voice_share) for f in days], "#5b4bb7"),
             Series("photos", [_percent(f.photo_share) for f in days], "#e37400")],
            unit="%")),
    ]


def _share_text(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _milliseconds(value: int | None) -> str:
    return "—" if value is None else f"{value:,} ms"


templates.env.filters["share"] = _share_text
templates.env.filters["ms"] = _milliseconds


@router.get("/insights", response_class=HTMLResponse)
def insights_page(request: Request, session: PageSession,
                  date_from: str | None = Query(None, alias="from"),
                  date_to: str | None = Query(None, alias="to"), platform: str | None = None,
                  language: str | None = None) -> HTMLResponse:
    state = _state(request)
    try:
        scope = parse_scope(date_from, date_to, platform, language)
    except HTTPException as exc:
        return _render(request, "message.html", {
            "session": session, "title": "Insights: wrong range", "text": exc.detail},
            status_code=400)
    found = state.log.insights(scope)
    filters = {"from": scope.start.isoformat(), "to": scope.end.isoformat(),
               "platform": scope.platform or "", "language": scope.language or ""}
    return _render(request, "insights.html", {
        "session": session, "found": found, "total": found.total, "filters": filters,
        "charts": charts(found), "platforms": [p.value for p in Platform],
        "languages": sorted({*state.log.languages(), *found.languages}),
        "query": _query(**filters)})


@router.get("/insights.json")
def insights_data(request: Request, session: DataSession,
                  date_from: str | None = Query(None, alias="from"),
                  date_to: str | None = Query(None, alias="to"), platform: str | None = None,
                  language: str | None = None) -> JSONResponse:
    scope = parse_scope(date_from, date_to, platform, language)
    return JSONResponse(insights_json(_state(request).log.insights(scope)))
