"""The console's insights (`/admin/insights`, issue 23): figures of the conversation log per day,
platform and language over a range of days, each computed in SQL by grouped queries (no row of
the log is read into Python).

    conversations      conversations with a message that day
    people             who wrote ("in" rows: their sender, else the conversation's person),
                       counted once per platform
    turns              the person's side of a turn ("in" rows)
    answers            the bot's answers: "out" rows of the model (not the bot's notices alone,
                       not an operator's reply)
    thumbs_up / down   ratings of answers (the `ratings` table): by the rating's own day
                       (`created_at`), platform and language; satisfaction is up / (up + down)
    latency p50 / p95  the answers' `latency_ms` (from the person's message to the answer sent),
                       nearest rank (the value at rank ceil(p * n / 100) of the group's ordered
                       latencies): PostgreSQL's `percentile_disc`; SQLite has no percentile
                       aggregate, so there the window function `cume_dist`
    guard_flags        messages the guard flagged (`FLAGGED_LABELS`, either side of a turn)
    handoffs           conversations handed to a person: the person asked (/human or in words;
                       the "in" row that started the hold is marked `handoff`), or a person of
                       the team answered (an "out" row by "operator: <name>": an admin's
                       take-over), counted once a conversation
    operator_replies   those replies
    voice_notes        "in" rows the person spoke (a transcript is kept)
    photos             "in" rows with a photo (a thumbnail is kept)

A level is the set of dimensions the figures are grouped by: () for the range's total, ("day",),
("platform",), ("language",) and ("day", "platform", "language"). Counts of distinct things
(conversations, people, hand-offs) and percentiles do not add up across groups, so each level is
grouped on its own, all five in one statement (`UNION ALL`) over one pass of the range (the index
on `created_at`): three statements in all, for the messages, the answers' latencies and the
ratings. The messages are first summed per conversation, person, day, platform and language (a
few rows a conversation-day), and the levels grouped from that.

Days are UTC days. A message without a language is in the language "unknown".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from storage.log.engine import LogDatabase
from storage.log.models import FLAGGED_LABELS, Conversation, LogImage, LogMessage, Rating

#: The language of messages (and ratings) that have none.
UNKNOWN_LANGUAGE = "unknown"
#: How an operator's reply names its author in `LogMessage.model`.
OPERATOR_PREFIX = "operator:"
#: The longest range the console asks for (the per-day series stays small).
MAX_DAYS = 366

Dimension = Literal["day", "platform", "language"]
Level = tuple[Dimension, ...]
TOTAL: Level = ()
BY_DAY: Level = ("day",)
BY_PLATFORM: Level = ("platform",)
BY_LANGUAGE: Level = ("language",)
DETAIL: Level = ("day", "platform", "language")
LEVELS: tuple[Level, ...] = (TOTAL, BY_DAY, BY_PLATFORM, BY_LANGUAGE, DETAIL)
DIMENSIONS: tuple[Dimension, ...] = ("day", "platform", "language")

#: Nearest-rank percentiles, in percent.
PERCENTILES = (50, 95)


@dataclass(frozen=True)
class InsightsRange:
    """What the insights cover: the UTC days `start` to `end`, both included, and optionally one
    platform and one language ("unknown": messages without one)."""

    start: dt.date
    end: dt.date
    platform: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the range ends before it starts")
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise ValueError(f"the range is longer than {MAX_DAYS} days")

    @classmethod
    def last(cls, days: int = 30, *, today: dt.date | None = None, platform: str | None = None,
             language: str | None = None) -> InsightsRange:
        """The last `days` days, today included."""
        end = today or dt.datetime.now(dt.UTC).date()
        return cls(end - dt.timedelta(days=days - 1), end, platform, language)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=dt.UTC)

    @property
    def before(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Figures:
    """The figures of one group (a day, a platform, a language, a combination, or all)."""

    conversations: int = 0
    people: int = 0
    turns: int = 0
    answers: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    guard_flags: int = 0
    handoffs: int = 0
    operator_replies: int = 0
    voice_notes: int = 0
    photos: int = 0

    @property
    def ratings(self) -> int:
        return self.thumbs_up + self.thumbs_down

    @property
    def satisfaction(self) -> float | None:
        """👍 / (👍 + 👎); None without ratings."""
        return self.thumbs_up / self.ratings if self.ratings else None

    @property
    def voice_share(self) -> float | None:
        """The share of turns that were voice notes; None without turns."""
        return self.voice_notes / self.turns if self.turns else None

    @property
    def photo_share(self) -> float | None:
        return self.photos / self.turns if self.turns else None

    def as_dict(self) -> dict[str, Any]:
        """The figures and the shares derived from them (the JSON of /admin/insights.json)."""
        def share(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {**asdict(self), "ratings": self.ratings,
                "satisfaction": share(self.satisfaction), "voice_share": share(self.voice_share),
                "photo_share": share(self.photo_share)}


@dataclass(frozen=True)
class InsightsRow:
    """The figures of one day, platform and language that has any."""

    day: dt.date
    platform: str
    language: str
    figures: Figures


@dataclass(frozen=True)
class Insights:
    range: InsightsRange
    total: Figures
    #: Every day of the range, in order (a day without messages has zeros).
    days: list[tuple[dt.date, Figures]]
    #: Platforms and languages with any figure, by name.
    platforms: dict[str, Figures]
    languages: dict[str, Figures]
    #: Each day, platform and language with any figure, by day, platform, language.
    rows: list[InsightsRow] = field(default_factory=list)


_Key = tuple[str, ...]


class LogInsights(LogDatabase):
    """The insights side of `ConversationLog`."""

    def insights(self, scope: InsightsRange) -> Insights:
        """Every level's figures over `scope`: three statements, one session."""
        with self._sessions() as session:
            counts = self._message_counts(session, scope)
            latencies = self._latencies(session, scope)
            ratings = self.rating_counts(session, scope)
        found: dict[Level, dict[_Key, Figures]] = {}
        for level in LEVELS:
            keys = {*counts[level], *latencies[level], *ratings[level]}
            found[level] = {}
            for key in keys:
                p50, p95 = latencies[level].get(key, (None, None))
                up, down = ratings[level].get(key, (0, 0))
                found[level][key] = Figures(**counts[level].get(key, {}), latency_p50_ms=p50,
                                            latency_p95_ms=p95, thumbs_up=up, thumbs_down=down)
        by_day = {dt.date.fromisoformat(k[0]): f for k, f in found[BY_DAY].items()}
        return Insights(
            range=scope, total=found[TOTAL].get((), Figures()),
            days=[(day, by_day.get(day, Figures())) for day in scope.days],
            platforms={k[0]: f for k, f in sorted(found[BY_PLATFORM].items())},
            languages={k[0]: f for k, f in sorted(found[BY_LANGUAGE].items())},
            rows=[InsightsRow(dt.date.fromisoformat(k[0]), k[1], k[2], f)
                  for k, f in sorted(found[DETAIL].items())])

    # --- the pieces ------------------------------------------------------------------------

    def _day(self, column: Any) -> ColumnElement[str]:
        """A timestamp's UTC day as 'YYYY-MM-DD' (a literal format: PostgreSQL must see the
        same expression in SELECT and GROUP BY)."""
        if self.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", column), literal_column("'YYYY-MM-DD'"))
        return func.strftime(literal_column("'%Y-%m-%d'"), column)

    def _language(self, column: Any) -> ColumnElement[str]:
        return func.coalesce(column, UNKNOWN_LANGUAGE)

    def _conditions(self, scope: InsightsRange) -> list[Any]:
        m, c = LogMessage, Conversation
        conditions = [m.created_at >= scope.since, m.created_at < scope.before]
        if scope.platform:
            conditions.append(c.platform == scope.platform)
        if scope.language:
            conditions.append(self._language(m.language) == scope.language)
        return conditions

    @staticmethod
    def _answer() -> Any:
        """An "out" row of the model (not a notice alone, not an operator's reply)."""
        m = LogMessage
        return and_(m.direction == "out", m.model.is_not(None),
                    not_(m.model.like(f"{OPERATOR_PREFIX}%")))

    def _facts(self, scope: InsightsRange) -> Select[Any]:
        """One row a message of the range, with its dimensions and what it counts as (0/1)."""
        m, c = LogMessage, Conversation
        is_in = m.direction == "in"
        photo = select(LogImage.id).where(LogImage.message_id == m.id).exists()

        def flag(condition: Any) -> Any:
            return case((condition, 1), else_=0)

        return (select(
            self._day(m.created_at).label("day"), c.platform.label("platform"),
            self._language(m.language).label("language"),
            m.conversation_id.label("conversation_id"),
            case((is_in, c.platform.concat(":").concat(func.coalesce(m.sender_id, c.user_id,
                                                                        c.chat_id))))
            .label("person"),
            flag(is_in).label("turn"), flag(self._answer()).label("answer"),
            flag(m.guard_label.in_(FLAGGED_LABELS)).label("flagged"),
            flag(m.model.like(f"{OPERATOR_PREFIX}%")).label("operator"),
            flag(and_(is_in, m.handoff.is_not(None))).label("asked"),
            flag(and_(is_in, m.transcript.is_not(None))).label("voice"),
            flag(and_(is_in, photo)).label("photo"))
            .join(c, c.id == m.conversation_id).where(*self._conditions(scope)))

    @staticmethod
    def _levels(source: Any, aggregates: Any) -> Any:
        """Every level's groups of `source` in one statement: `aggregates(level's rows)` under
        the level's number and its dimensions (NULL for those it does not group by)."""
        parts = []
        for number, level in enumerate(LEVELS):
            dims = [source.c[d] if d in level else cast(null(), String) for d in DIMENSIONS]
            part = select(literal_column(str(number)).label("level"),
                          *[d.label(name) for d, name in zip(dims, DIMENSIONS, strict=True)],
                          *aggregates(source))
            if level:
                part = part.group_by(*[source.c[d] for d in level])
            parts.append(part)
        return union_all(*parts)

    @staticmethod
    def _rows(session: Session, statement: Any) -> Iterator[tuple[Level, _Key, list[Any]]]:
        for row in session.execute(statement):
            level = LEVELS[int(row[0])]
            dims = dict(zip(DIMENSIONS, row[1:4], strict=True))
            yield level, tuple(dims[d] for d in level), list(row[4:])

    def _message_counts(self, session: Session,
                        scope: InsightsRange) -> dict[Level, dict[_Key, dict[str, int]]]:
        """The counts of every level, in one pass over the range: its messages summed per
        conversation, person, day, platform and language (a small set: conversation-days),
        then that grouped by each level."""
        facts = self._facts(scope).subquery("facts")
        grain = select(
            *[facts.c[d] for d in DIMENSIONS], facts.c.conversation_id, facts.c.person,
            *[func.sum(facts.c[n]).label(n)
              for n in ("turn", "answer", "flagged", "operator", "asked", "voice", "photo")]
        ).group_by(*[facts.c[d] for d in DIMENSIONS], facts.c.conversation_id,
                   facts.c.person).cte("grain")

        def aggregates(g: Any) -> list[Any]:
            return [func.count(func.distinct(g.c.conversation_id)),
                    func.count(func.distinct(g.c.person)),
                    func.sum(g.c.turn), func.sum(g.c.answer), func.sum(g.c.flagged),
                    func.count(func.distinct(case((or_(g.c.operator > 0, g.c.asked > 0),
                                                   g.c.conversation_id)))),
                    func.sum(g.c.operator), func.sum(g.c.voice), func.sum(g.c.photo)]

        names = ("conversations", "people", "turns", "answers", "guard_flags", "handoffs",
                 "operator_replies", "voice_notes", "photos")
        found: dict[Level, dict[_Key, dict[str, int]]] = {level: {} for level in LEVELS}
        for level, key, values in self._rows(session, self._levels(grain, aggregates)):
            counts = [int(v or 0) for v in values]
            if counts[0]:  # (the total of an empty range is one row of nothing)
                found[level][key] = dict(zip(names, counts, strict=True))
        return found

    def _latencies(self, session: Session,
                   scope: InsightsRange) -> dict[Level, dict[_Key, tuple[int | None, ...]]]:
        """Nearest-rank percentiles of the answers' latency per group of every level, in one
        statement over the range's answers: PostgreSQL's `percentile_disc`; on SQLite, which
        has no percentile aggregate, the window function `cume_dist` (`_ranked`). Both give the
        value at rank ceil(p * n / 100) of the group's ordered latencies."""
        m, c = LogMessage, Conversation
        answers = (select(self._day(m.created_at).label("day"), c.platform.label("platform"),
                          self._language(m.language).label("language"),
                          m.latency_ms.label("latency"))
                   .join(c, c.id == m.conversation_id)
                   .where(*self._conditions(scope), self._answer(), m.latency_ms.is_not(None))
                   .cte("answers"))
        if self.dialect == "postgresql":
            def aggregates(g: Any) -> list[Any]:
                return [func.percentile_disc(p / 100).within_group(g.c.latency)
                        for p in PERCENTILES]

            statement = self._levels(answers, aggregates)
        else:
            statement = union_all(*[self._ranked(answers, number, level)
                                    for number, level in enumerate(LEVELS)])
        found: dict[Level, dict[_Key, tuple[int | None, ...]]] = {level: {} for level in LEVELS}
        for level, key, values in self._rows(session, statement):
            if any(v is not None for v in values):
                found[level][key] = tuple(None if v is None else int(v) for v in values)
        return found

    @staticmethod
    def _ranked(answers: Any, number: int, level: Level) -> Any:
        """One level's percentiles by a window function (SQLite): the smallest latency whose
        cumulative share (`cume_dist`: the share of the group at or below it) reaches p. The
        comparison is exact: k / n and p / 100 are either equal, and then the same double, or
        at least 1 / (100 n) apart."""
        dims = [answers.c[d] for d in level]
        ranked = select(
            *dims, answers.c.latency.label("v"),
            func.cume_dist().over(partition_by=dims or None, order_by=answers.c.latency)
            .label("share")).subquery()
        picks = [func.min(case((ranked.c.share >= literal_column(repr(p / 100)), ranked.c.v)))
                 for p in PERCENTILES]
        part = select(literal_column(str(number)).label("level"),
                      *[(ranked.c[d] if d in level else cast(null(), String)).label(d)
                        for d in DIMENSIONS], *picks)
        return part.group_by(*[ranked.c[d] for d in level]) if level else part

    def rating_counts(self, session: Session,
                      scope: InsightsRange) -> dict[Level, dict[_Key, tuple[int, int]]]:
        """👍 and 👎 per group of every level, from the `ratings` table with its own day,
        platform and language: a rating counts on the day the answer was first rated, with its
        current value (a second rating replaces the first)."""
        r = Rating
        conditions = [r.created_at >= scope.since, r.created_at < scope.before]
        if scope.platform:
            conditions.append(r.platform == scope.platform)
        if scope.language:
            conditions.append(self._language(r.language) == scope.language)
        rated = select(self._day(r.created_at).label("day"), r.platform.label("platform"),
                       self._language(r.language).label("language"),
                       r.rating.label("rating")).where(*conditions).cte("rated")

        def aggregates(g: Any) -> list[Any]:
            return [func.sum(case((g.c.rating > 0, 1), else_=0)),
                    func.sum(case((g.c.rating < 0, 1), else_=0))]

        found: dict[Level, dict[_Key, tuple[int, int]]] = {level: {} for level in LEVELS}
        for level, key, values in self._rows(session, self._levels(rated, aggregates)):
            up, down = (int(v or 0) for v in values)
            if up or down:
                found[level][key] = (up, down)
        return found


def day_series(insights: Insights, metric: str) -> list[tuple[dt.date, float | None]]:
    """One figure of every day of the range (a `Figures` attribute or property)."""
    return [(day, getattr(figures, metric)) for day, figures in insights.days]


def by_day_and(insights: Insights, dimension: Literal["platform", "language"],
               metric: str) -> dict[str, list[int]]:
    """An additive figure (turns, answers, ...) per day for each platform or language: the
    detailed rows summed over the other dimension (what a stacked chart draws)."""
    index = {day: n for n, day in enumerate(insights.range.days)}
    series: dict[str, list[int]] = {}
    for row in insights.rows:
        name = getattr(row, dimension)
        values = series.setdefault(name, [0] * len(index))
        values[index[row.day]] += getattr(row.figures, metric)
    return dict(sorted(series.items()))
