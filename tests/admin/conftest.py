"""Fixtures of the admin console's tests: the conversation log on real SQLite and PostgreSQL
(tests/helpers/conversation_log.py)."""

from tests.helpers.conversation_log import conversation_log, postgres_log, postgres_url

__all__ = ["conversation_log", "postgres_log", "postgres_url"]
