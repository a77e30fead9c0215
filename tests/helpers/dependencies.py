"""pyproject.toml's requirements and deploy/constraints.txt's pins, parsed for the tests that
check them against each other and against the known CVEs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
#: The lock: the exact versions the images install (deploy/lock.sh writes it).
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"


def locked_versions() -> dict[str, Version]:
    """Canonical name -> version of every `name==version` line of deploy/constraints.txt."""
    pins: dict[str, Version] = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"constraints.txt:{number}: not an exact pin: {line!r}"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints.txt:{number}: {name} pinned twice"
        pins[name] = Version(m.group(2))
    return pins


def pyproject_requirements() -> dict[str, Requirement]:
    """Canonical name -> requirement, for every one pyproject.toml names: the build's, the base
    ones and every extra's."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    texts = [*data["build-system"]["requires"], *project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        texts += extra
    return {canonicalize_name(r.name): r for r in map(Requirement, texts)}
