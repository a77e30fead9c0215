"""Alembic migrations of the conversation log (`storage.conversation_log`)."""
