"""The insights page's SVG charts (`bot.admin.charts`): what they draw, the y axis' scale, gaps,
and that every text in them is escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bot.admin.charts import Series, line_chart, scale, share_bars, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, or this raises


@pytest.mark.parametrize(("value", "integer", "expected"), [
    (0, True, (1, 1)), (1, True, (1, 1)), (3, True, (3, 1)), (50, True, (60, 20)),
    (366, True, (400, 100)), (5.2, False, (6, 2)), (27.3, False, (30, 10)),
    (0.4, False, (0.4, 0.1)),
])
def test_the_y_axis_has_round_steps(value, integer, expected):
    top, step = scale(value, integer=integer)
    assert (top, step) == pytest.approx(expected)
    assert top >= value and 1 <= round(top / step) <= 5


def test_a_line_breaks_where_a_day_has_no_value():
    svg = parsed(line_chart("Latency", ["a", "b", "c", "d", "e"],
                            [Series("p50", [1.0, 2.0, None, 3.0, 4.0])], unit=" s"))
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 2 and all(len(line.get("points").split()) == 2 for line in lines)
    assert len(svg.findall(f"{SVG}circle")) == 4
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert titles[0] == "Latency" and "p50 d: 3 s" in titles


def test_stacked_bars_stack_each_day():
    svg = parsed(stacked_bars("Turns", ["d1", "d2"], [Series("line", [2, 0]),
                                                      Series("telegram", [3, 4])]))
    bars = [r for r in svg.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [r.find(f"{SVG}title").text for r in bars] == ["line d1: 2", "telegram d1: 3",
                                                          "telegram d2: 4"]
    heights = [float(r.get("height")) for r in bars]
    assert heights[0] / heights[1] == pytest.approx(2 / 3, rel=1e-2)  # (0.1 px)
    # The two parts of the first bar touch: one starts where the other ends.
    assert float(bars[1].get("y")) + heights[1] == pytest.approx(float(bars[0].get("y")), abs=0.11)


def test_share_bars_are_as_long_as_their_share():
    svg = parsed(share_bars("Satisfaction", [("en", 1.0, "100%"), ("th", 0.5, "50%"),
                                             ("vi", None, "no ratings")]))
    bars = [r for r in svg.findall(f"{SVG}rect")]
    assert len(bars) == 2
    assert float(bars[0].get("width")) == pytest.approx(2 * float(bars[1].get("width")))
    assert "no data" in str(share_bars("Satisfaction", []))


def test_every_text_is_escaped():
    evil = '<script>alert(1)</script>"'
    markup = str(line_chart(evil, [evil], [Series(evil, [1], color='red"/><script>')]))
    markup += str(share_bars(evil, [(evil, 0.5, evil)]))
    assert "<script" not in markup
    assert not re.search(r"\son[a-z]+=", markup)
    parsed(line_chart(evil, [evil], [Series(evil, [1])]))
