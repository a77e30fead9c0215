"""Alembic migrations of the conversation log (`storage.log`)."""
