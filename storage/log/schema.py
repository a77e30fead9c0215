"""The conversation log's schema: Alembic, configured in code. The migrations live in
`storage/migrations/` (their `env.py` takes the models and the engine from this package);
`upgrade_database(url)` applies them and `sealion-bot migrate` calls it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from storage.log.engine import ensure_sqlite_dir, normalize_url, redact_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Any:
    """An Alembic config built in code (no alembic.ini needed) for `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Create or update the log's tables (Alembic `upgrade head`). Idempotent."""
    from alembic import command

    url = normalize_url(url)
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
    log.info("conversation log schema at %s is up to date", redact_url(url))
