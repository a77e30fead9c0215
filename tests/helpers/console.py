"""The admin console over HTTP in tests: its settings, a signed-in client, and its forms' CSRF
token (the real app: create_app + mount_admin)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bot.admin import mount_admin
from bot.kernel.settings import Settings
from bot.web.app import create_app

PASSWORD = "correct horse battery staple"


def settings_for(tmp_path, redis_url: str, **overrides) -> Settings:
    values = {"_env_file": None, "environment": "test", "redis_url": redis_url,
              "database_url": f"sqlite:///{tmp_path / 'log.db'}", "admin_password": PASSWORD,
              "data_dir": str(tmp_path)}
    values.update(overrides)
    return Settings(**values)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def login(client: TestClient, password: str = PASSWORD, username: str = "admin",
          next_url: str = "/admin"):
    page = client.get("/admin/login")
    assert page.status_code == 200
    return client.post("/admin/login", data={"username": username, "password": password,
                                             "csrf": csrf_of(page.text), "next": next_url},
                       follow_redirects=False)


def signed_in_client(settings: Settings) -> TestClient:
    """A client of the app these settings make, signed in to the console."""
    app = create_app(settings)
    assert mount_admin(app, settings)
    client = TestClient(app, follow_redirects=False)
    response = login(client)
    assert response.status_code == 303, response.text
    return client
