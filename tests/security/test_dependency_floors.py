"""Dependencies past their known CVEs (#18, item 14).

The table below is the known CVEs of the packages the service runs on, each with the first
release that fixes it. pyproject.toml's floors must admit no release before those (the floors
are what `pip install sealion-bot` promises), and deploy/constraints.txt, the lock the images
install from, must pin releases past them, transitive packages included. Checked and without a
known CVE to name: itsdangerous, av (PyAV; its wheels bring FFmpeg, whose version the lock's av
pin fixes), kombu, accelerate, alembic, pydantic-settings.

When an advisory is published: add it here, raise the floor in pyproject.toml (naming the CVE),
run deploy/lock.sh.
"""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers.dependencies import locked_versions, pyproject_requirements

#: package -> (CVE, first fixed release), for packages pyproject.toml names.
DIRECT: dict[str, list[tuple[str, str]]] = {
    "starlette": [("CVE-2026-54283", "1.3.1"), ("CVE-2026-48710", "1.0.1"),
                  ("CVE-2025-62727", "0.49.1"), ("CVE-2024-47874", "0.40.0")],
    "python-multipart": [("CVE-2026-53540", "0.0.31"), ("CVE-2026-53537", "0.0.30"),
                         ("CVE-2026-53538", "0.0.30"), ("CVE-2026-53539", "0.0.30"),
                         ("CVE-2026-42561", "0.0.27"), ("CVE-2026-40347", "0.0.26"),
                         ("CVE-2026-24486", "0.0.22"), ("CVE-2024-53981", "0.0.18"),
                         ("CVE-2024-24762", "0.0.7")],
    "h11": [("CVE-2025-43859", "0.16.0")],
    "jinja2": [("CVE-2025-27516", "3.1.6"), ("CVE-2024-56201", "3.1.5"),
               ("CVE-2024-56326", "3.1.5"), ("CVE-2024-34064", "3.1.4"),
               ("CVE-2024-22195", "3.1.3")],
    "pillow": [("CVE-2026-59197", "12.3.0"), ("CVE-2026-59199", "12.3.0"),
               ("CVE-2026-59200", "12.3.0"), ("CVE-2026-59205", "12.3.0"),
               ("CVE-2026-54058", "12.3.0"), ("CVE-2026-25990", "12.1.1"),
               ("CVE-2024-28219", "10.3.0"), ("CVE-2023-50447", "10.2.0")],
    "fastapi": [("CVE-2024-24762", "0.109.1")],
    "uvicorn": [("CVE-2020-7694", "0.11.7"), ("CVE-2020-7695", "0.11.7")],
    "httpx": [("CVE-2021-41945", "0.23.0")],
    "pydantic": [("CVE-2024-3772", "2.4.0")],
    "markdown-it-py": [("CVE-2023-26302", "2.2.0"), ("CVE-2023-26303", "2.2.0")],
    "sqlalchemy": [("CVE-2019-7164", "1.3.0"), ("CVE-2019-7548", "1.3.0")],
    "celery": [("CVE-2021-23727", "5.2.2")],
    "redis": [("CVE-2023-28858", "4.5.3"), ("CVE-2023-28859", "4.5.4")],
    "transformers": [("CVE-2026-4372", "5.3.0"), ("CVE-2024-11392", "4.48.0"),
                     ("CVE-2023-6730", "4.36.0")],
    "torch": [("CVE-2026-4538", "2.11"), ("CVE-2025-32434", "2.6.0")],
    "pyyaml": [("CVE-2020-14343", "5.4")],
    "setuptools": [("CVE-2025-47273", "78.1.1"), ("CVE-2024-6345", "70.0.0")],
}

#: Packages that come in through others: only the lock decides their versions.
TRANSITIVE: dict[str, list[tuple[str, str]]] = {
    "aiohttp": [("CVE-2025-53643", "3.12.14")],  # line-bot-sdk
    "urllib3": [("CVE-2026-21441", "2.6.3"), ("CVE-2025-66471", "2.6.0")],  # requests
    "requests": [("CVE-2024-47081", "2.32.4")],  # huggingface-hub, line-bot-sdk
    "mako": [("CVE-2022-40023", "1.2.2")],  # alembic
}


def fixed_in(advisories: list[tuple[str, str]]) -> tuple[Version, str]:
    """The release that fixes them all, and the CVE that needs it."""
    cve, version = max(advisories, key=lambda advisory: Version(advisory[1]))
    return Version(version), cve


def lowest_admitted(requirement: Requirement) -> Version | None:
    """The lower bound of a requirement's range (None: it has none)."""
    bounds = [Version(s.version) for s in requirement.specifier
              if s.operator in (">=", "==", "~=", "===", ">")]
    return max(bounds) if bounds else None


@pytest.mark.parametrize("package", sorted(DIRECT))
def test_pyproject_floor_sits_past_the_known_cves(package):
    requirement = pyproject_requirements().get(package)
    assert requirement is not None, f"pyproject.toml names no {package}"
    needed, cve = fixed_in(DIRECT[package])
    floor = lowest_admitted(requirement)
    assert floor is not None and floor >= needed, (
        f"{requirement} admits releases vulnerable to {cve}: the floor must be >= {needed}")


@pytest.mark.parametrize("package", sorted({**DIRECT, **TRANSITIVE}))
def test_the_lock_pins_a_release_past_the_known_cves(package):
    pins = locked_versions()
    needed, cve = fixed_in({**DIRECT, **TRANSITIVE}[package])
    assert package in pins, f"deploy/constraints.txt pins no {package}"
    assert pins[package] >= needed, (
        f"deploy/constraints.txt pins {package} {pins[package]}, vulnerable to {cve} "
        f"(fixed in {needed}): run deploy/lock.sh")
