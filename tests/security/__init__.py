"""Hostile input, round two (#18): each test here failed on the code before its fix."""
