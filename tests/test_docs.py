"""The README and docs/ against the code: every setting, command and metric is documented where
an operator looks for it, and every relative link (file and #anchor) leads somewhere.

Pure reading: no process, no network.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli.main import main as cli
from bot.kernel.settings import Settings
from storage.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _section(text: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of that level or above."""
    start = text.index(f"\n## {heading}\n")
    following = re.search(r"\n#{1,2} ", text[start + 1:])
    return text[start:start + 1 + following.start()] if following else text[start:]


def _table_names(section: str) -> set[str]:
    """The `NAMES` in the first column of a Markdown table."""
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def _anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_setting_is_in_the_settings_table_and_nothing_else():
    documented = _table_names(_section(CONFIGURATION.read_text(), "Settings"))
    names = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    assert not names - documented, f"document in docs/configuration.md: {sorted(names - documented)}"
    assert not documented - names, f"not settings: {sorted(documented - names)}"


def test_every_command_is_in_the_commands_table():
    table = _section(CONFIGURATION.read_text(), "Commands")
    missing = [name for name in cli.commands if f"`sealion-bot {name}" not in table]
    assert not missing, f"document in docs/configuration.md: {missing}"


def test_every_metric_is_documented_by_its_exported_name():
    text = CONFIGURATION.read_text()
    # Prometheus names a counter `..._total`; a histogram keeps its name (with _bucket, _sum).
    exported = {f"sealion_{name}" + ("_total" if kind == "counter" else "")
                for name, (kind, *_) in METRICS.items()}
    missing = [name for name in sorted(exported)
               if not re.search(rf"`{name}(\{{[a-z_,]+\}})?`", text)]
    assert not missing, f"document in docs/configuration.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(page: Path):
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(target)
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_anchor_rule_matches_githubs():
    # Examples of how GitHub names headings, so the link check above checks the right thing.
    assert _anchor("What can still double") == "what-can-still-double"
    assert _anchor("The chat model, batched") == "the-chat-model-batched"
    assert _anchor("`dev`'s embedded Redis and `DATA_DIR`") == "devs-embedded-redis-and-data_dir"
    assert _anchor('Trust in "this machine"') == "trust-in-this-machine"
