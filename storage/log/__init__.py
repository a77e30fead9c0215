"""The durable conversation log behind the admin console: SQLite by default, PostgreSQL in
production, through SQLAlchemy 2 and Alembic.

Redis forgets a conversation after `HISTORY_TTL_SECONDS`; this log keeps every turn — what the
person wrote (with small JPEG thumbnails of their photos) and what the bot answered, with the
model, latency and token counts — until `RETENTION_DAYS` have passed (0 keeps it forever) or an
operator deletes the person's data from the console.

    models.py    the tables (ORM)
    engine.py    the engine factory (SQLite pragmas), URLs, the shared `LogDatabase` base
    writer.py    `TurnRecord` and `record_turn`
    queries.py   the console's reads: list, search, thread, image, export rows
    insights.py  the console's figures per day, platform and language (`/admin/insights`)
    erasure.py   the SQL of deleting a person (storage/erasure.py runs it), retention
    ratings.py   👍/👎 on answers: `rate`, and the rated pairs exported for evaluation
    schema.py    Alembic: `upgrade_database` (migrations in `storage/migrations/`)

`ConversationLog` joins the three sides; code that needs only one may take that side's class.
"""

from __future__ import annotations

from storage.log.engine import LogDatabase, make_engine, normalize_url, redact_url
from storage.log.erasure import DeletedPerson, LogErasure, Purged, purge_expired
from storage.log.insights import Figures, Insights, InsightsRange, InsightsRow, LogInsights
from storage.log.models import FLAGGED_LABELS
from storage.log.queries import (
    EXPORT_FIELDS,
    ConversationFilter,
    ConversationPage,
    ConversationRow,
    LogQueries,
    MessageRow,
    Thread,
    search_words,
)
from storage.log.ratings import RATING_FIELDS, LogRatings, Rated
from storage.log.schema import alembic_config, upgrade_database
from storage.log.writer import GuardRecord, LogWriter, TurnRecord

__all__ = [
    "EXPORT_FIELDS",
    "FLAGGED_LABELS",
    "ConversationFilter",
    "ConversationLog",
    "ConversationPage",
    "ConversationRow",
    "DeletedPerson",
    "Figures",
    "GuardRecord",
    "Insights",
    "InsightsRange",
    "InsightsRow",
    "LogDatabase",
    "LogErasure",
    "MessageRow",
    "Purged",
    "RATING_FIELDS",
    "Rated",
    "Thread",
    "TurnRecord",
    "alembic_config",
    "make_engine",
    "normalize_url",
    "purge_expired",
    "redact_url",
    "search_words",
    "upgrade_database",
]


class ConversationLog(LogWriter, LogQueries, LogErasure, LogRatings, LogInsights):
    """Writes turns, answers the console's questions, sums them up, forgets. Thread-safe; one
    per process is enough."""
