"""The model's Markdown for platforms without HTML: WhatsApp's own marks, or plain text (LINE).

Both start from `markdown_to_telegram_html`, which already parses the Markdown safely and keeps
only a small, well-formed set of tags; this module maps those tags to the target's conventions.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from adapters.telegram_html import markdown_to_telegram_html

__all__ = ["html_to_plain", "html_to_whatsapp", "markdown_to_plain", "markdown_to_whatsapp"]

# Linear in the markup, whatever it holds: a tag's attributes stop at the next "<" or ">", and
# each pattern ending in a closing tag runs only up to that tag's last occurrence (`_sub`), so
# an opening tag left unclosed is never rescanned to the end once per opening tag. On the
# well-formed markup `markdown_to_telegram_html` writes, the results are what the plain
# patterns give.
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^<>]+>")

_Replacement = str | Callable[[re.Match[str]], str]
_WHATSAPP_TAGS: list[tuple[re.Pattern[str], _Replacement, str]] = [
    (re.compile(r"<pre(?: [^<>]*)?>(?:<code[^<>]*>)?(.*?)(?:</code>)?</pre>", re.DOTALL),
     lambda m: f"```{m.group(1)}```" if "```" not in m.group(1) else m.group(1), "</pre>"),
    (re.compile(r"<code>(.*?)</code>", re.DOTALL), r"`\1`", "</code>"),
    (re.compile(r"<b>(.*?)</b>", re.DOTALL), r"*\1*", "</b>"),
    (re.compile(r"<i>(.*?)</i>", re.DOTALL), r"_\1_", "</i>"),
    (re.compile(r"<s>(.*?)</s>", re.DOTALL), r"~\1~", "</s>"),
    (re.compile(r"<blockquote(?: [^<>]*)?>(.*?)</blockquote>", re.DOTALL),
     lambda m: "\n".join(f"> {line}" for line in m.group(1).split("\n")), "</blockquote>"),
]


def _sub(pattern: re.Pattern[str], replacement: _Replacement, markup: str, closer: str) -> str:
    """`pattern.sub(replacement, markup)` for a pattern whose every match ends with `closer`,
    run only up to the last `closer`: no match ends after it, and there each opening tag's
    lazy search for a closer would fail only after reading to the end."""
    end = markup.rfind(closer)
    if end < 0:
        return markup
    end += len(closer)
    return pattern.sub(replacement, markup[:end]) + markup[end:]


def _links(markup: str) -> str:
    def one(match: re.Match[str]) -> str:
        href, label = html.unescape(match.group(1)), match.group(2)
        plain_label = html.unescape(_TAG.sub("", label))
        return label if plain_label == href else f"{label} ({html.escape(href, quote=False)})"

    return _sub(_LINK, one, markup, "</a>")


def _finish(markup: str) -> str:
    return html.unescape(_TAG.sub("", markup)).strip()


def html_to_plain(markup: str) -> str:
    """Telegram HTML (as `markdown_to_telegram_html` writes it) as plain text."""
    return _finish(_links(markup))


def html_to_whatsapp(markup: str) -> str:
    """Telegram HTML (as `markdown_to_telegram_html` writes it) in WhatsApp's marks."""
    markup = _links(markup)
    for pattern, replacement, closer in _WHATSAPP_TAGS:
        markup = _sub(pattern, replacement, markup, closer)
    return _finish(markup)


def markdown_to_plain(md: str) -> str:
    """Readable plain text: no marks, bullets kept, links as 'label (url)'."""
    return html_to_plain(markdown_to_telegram_html(md)) or md.strip()


def markdown_to_whatsapp(md: str) -> str:
    """WhatsApp formatting: *bold*, _italic_, ~strike~, `code`, ```blocks```, '> ' quotes."""
    return html_to_whatsapp(markdown_to_telegram_html(md)) or md.strip()
