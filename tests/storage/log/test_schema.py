"""The log's schema: the Alembic migrations match the models, upgrade is idempotent, downgrade and
upgrade again, the `migrate` command; database URLs and the log's settings."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.kernel.settings import Settings
from storage.log import ConversationFilter, ConversationLog, upgrade_database
from storage.log.models import Base
from tests.helpers.conversation_log import key_of, turn


def test_migration_matches_the_models(conversation_log: ConversationLog):
    search_objects = {"log_messages_fts", "ix_log_messages_text_trgm",
                      "ix_log_conversations_user_name_trgm", "alembic_version"}

    def include(obj, name, type_, reflected, compare_to):
        return not (name in search_objects or (name or "").startswith("log_messages_fts"))

    with conversation_log.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include,
                                                               "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'log.db'}"
    upgrade_database(url)
    upgrade_database(url)
    assert (tmp_path / "nested" / "dir" / "log.db").exists()


def test_the_migrate_command(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from sqlalchemy import inspect

    from bot.cli.main import main
    from bot.kernel.settings import get_settings

    target = tmp_path / "cli" / "log.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    conversation_log = ConversationLog(f"sqlite:///{target}")
    tables = set(inspect(conversation_log.engine).get_table_names())
    assert {"log_conversations", "log_messages", "log_images", "log_messages_fts",
            "alembic_version"} <= tables
    conversation_log.close()


def test_downgrade_and_upgrade_again(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from storage.log import alembic_config

    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade_database(url)
    command.downgrade(alembic_config(url), "base")
    conversation_log = ConversationLog(url)
    assert set(inspect(conversation_log.engine).get_table_names()) == {"alembic_version"}
    upgrade_database(url)
    assert turn(conversation_log, key_of(), "back again", "yes")
    assert conversation_log.list_conversations(ConversationFilter(search="again")).total == 1
    conversation_log.close()



def test_settings_defaults():
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///.sealion/log.db"
    assert settings.admin_username == "admin"
    assert settings.retention_days == 0


def test_plain_postgresql_urls_mean_psycopg3():
    from storage.log import normalize_url, redact_url

    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "p@" not in redact_url("postgresql://u:p@h/db")
