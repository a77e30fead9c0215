"""Alembic environment of the conversation log.

The database is, in order: `sqlalchemy.url` of the Alembic config (set in code by
`storage.log.upgrade_database`, or in `storage/alembic.ini`), else the service's
`DATABASE_URL` setting. Connections come from `storage.log.engine.make_engine`, so SQLite gets the
same pragmas (WAL, foreign keys) as the service.
"""

from __future__ import annotations

import logging.config

from alembic import context
from sqlalchemy import pool

from storage.log.engine import make_engine, normalize_url
from storage.log.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from bot.kernel.settings import Settings

        url = Settings().database_url
    return normalize_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"}, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              # SQLite alters tables by copying them (ALTER is limited there).
                              render_as_batch=connection.dialect.name == "sqlite",
                              transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
