"""The model's Markdown for platforms without HTML: WhatsApp's own marks, or plain text (LINE).

Both start from `markdown_to_telegram_html`, which already parses the Markdown safely and keeps
only a small, well-formed set of tags; this module maps those tags to the target's conventions.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from adapters.telegram_html import markdown_to_telegram_html

__all__ = ["markdown_to_plain", "markdown_to_whatsapp"]

_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")

_WHATSAPP_TAGS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"<pre(?: [^>]*)?>(?:<code[^>]*>)?(.*?)(?:</code>)?</pre>", re.DOTALL),
     lambda m: f"```{m.group(1)}```" if "```" not in m.group(1) else m.group(1)),
    (re.compile(r"<code>(.*?)</code>", re.DOTALL), r"`\1`"),
    (re.compile(r"<b>(.*?)</b>", re.DOTALL), r"*\1*"),
    (re.compile(r"<i>(.*?)</i>", re.DOTALL), r"_\1_"),
    (re.compile(r"<s>(.*?)</s>", re.DOTALL), r"~\1~"),
    (re.compile(r"<blockquote(?: [^>]*)?>(.*?)</blockquote>", re.DOTALL),
     lambda m: "\n".join(f"> {line}" for line in m.group(1).split("\n"))),
]


def _links(markup: str) -> str:
    def one(match: re.Match[str]) -> str:
        href, label = html.unescape(match.group(1)), match.group(2)
        plain_label = html.unescape(_TAG.sub("", label))
        return label if plain_label == href else f"{label} ({html.escape(href, quote=False)})"

    return _LINK.sub(one, markup)


def _finish(markup: str) -> str:
    return html.unescape(_TAG.sub("", markup)).strip()


def markdown_to_plain(md: str) -> str:
    """Readable plain text: no marks, bullets kept, links as 'label (url)'."""
    return _finish(_links(markdown_to_telegram_html(md))) or md.strip()


def markdown_to_whatsapp(md: str) -> str:
    """WhatsApp formatting: *bold*, _italic_, ~strike~, `code`, ```blocks```, '> ' quotes."""
    markup = _links(markdown_to_telegram_html(md))
    for pattern, replacement in _WHATSAPP_TAGS:
        markup = pattern.sub(replacement, markup)
    return _finish(markup) or md.strip()
