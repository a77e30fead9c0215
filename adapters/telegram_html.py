"""Render the model's Markdown as the HTML subset Telegram accepts (parse_mode="HTML").

Models answer in CommonMark-ish Markdown (plus GFM tables and ~~strikethrough~~). Telegram
understands only b, i, u, s, a href, code, pre and blockquote, rejects a message whose markup it
cannot parse, and has its own nesting rules, so `markdown_to_telegram_html` parses the Markdown
with markdown-it-py and writes only what Telegram takes:

* emphasis, strong and strikethrough become i, b and s; inline code becomes code;
* fenced code becomes ``<pre><code class="language-x">``, other code blocks ``<pre>``;
* headings become a bold line; list items get "• " or "1. " (nested lists are indented);
* tables become aligned monospace text in a ``<pre>``; a thematic break a line of "─";
* links keep only http(s), tg and mailto targets (others keep their text); an image becomes a
  link to it;
* HTML in the source is shown as text, never passed through.

The output is always well formed (every tag closed, properly nested, text and attribute values
escaped) and keeps Telegram's nesting rules: nothing inside code or pre, no code or link inside
a link, no blockquote inside a blockquote. Blocks are separated by one blank line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["markdown_to_telegram_html", "visible_length", "escape"]

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.enable(["table", "strikethrough"])

BULLET = "•"
RULE = "─" * 10
_INDENT = "   "
_SAFE_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,32}")
# Linear: after the scheme's first character of host or address one "\S*" takes the rest
# ("[^\s/?#]+\S*" would split a run between two quantifiers every way before failing).
_LINK = re.compile(r"(?:https?://[^\s/?#]|tg://\S|mailto:[^\s@]+@\S)\S*", re.IGNORECASE)


def escape(text: str) -> str:
    """Escape text for Telegram HTML: &, < and > (the only entities it needs in text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return escape(value).replace('"', "&quot;")


def _safe_href(href: str) -> str | None:
    """`href` when it is a link Telegram can open and we want to offer, else None."""
    if not href or any(char.isspace() or unicodedata.category(char) == "Cc" for char in href):
        return None
    return href if _LINK.fullmatch(href) else None


@dataclass(frozen=True)
class _Context:
    in_quote: bool = False
    in_link: bool = False
    depth: int = 0  # list nesting


def _wrap(tag: str, inner: str, attributes: str = "") -> str:
    if not inner:
        return ""
    return f"<{tag}{attributes}>{inner}</{tag}>"


# --- inline ---------------------------------------------------------------------------------


def _inline(node: SyntaxTreeNode, ctx: _Context) -> str:
    return "".join(_inline_node(child, ctx) for child in node.children)


def _inline_node(node: SyntaxTreeNode, ctx: _Context) -> str:
    kind = node.type
    if kind == "text":
        return escape(node.content)
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "code_inline":
        # A link can't hold code in Telegram: inside one, code is plain text.
        return escape(node.content) if ctx.in_link else _wrap("code", escape(node.content))
    if kind == "em":
        return _wrap("i", _inline(node, ctx))
    if kind == "strong":
        return _wrap("b", _inline(node, ctx))
    if kind == "s":
        return _wrap("s", _inline(node, ctx))
    if kind == "link":
        href = _safe_href(str(node.attrs.get("href") or ""))
        if href is None or ctx.in_link:
            return _inline(node, ctx)
        inner = _inline(node, replace(ctx, in_link=True)) or escape(href)
        return f'<a href="{_attribute(href)}">{inner}</a>'
    if kind == "image":
        alt = node.content or _plain_inline(node)
        src = _safe_href(str(node.attrs.get("src") or ""))
        if src is None or ctx.in_link:
            return escape(alt)
        return f'<a href="{_attribute(src)}">{escape(alt or src)}</a>'
    if kind == "html_inline":
        return escape(node.content)
    if node.children:
        return _inline(node, ctx)
    return escape(node.content)


def _plain_inline(node: SyntaxTreeNode) -> str:
    """The text of an inline node as the reader sees it, without markup."""
    parts: list[str] = []
    for child in node.children:
        if child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content or _plain_inline(child))
        else:
            parts.append(_plain_inline(child))
    return "".join(parts)


# --- blocks ---------------------------------------------------------------------------------


def _blocks(node: SyntaxTreeNode, ctx: _Context) -> list[str]:
    rendered = (_block(child, ctx) for child in node.children)
    return [block for block in rendered if block]


def _block(node: SyntaxTreeNode, ctx: _Context) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline(node.children[0], ctx) if node.children else ""
    if kind == "heading":
        return _wrap("b", _inline(node.children[0], ctx)) if node.children else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, ctx)
    if kind == "blockquote":
        inner = "\n\n".join(_blocks(node, replace(ctx, in_quote=True, depth=0)))
        # Telegram does not nest quotes: a quote inside a quote is just its text.
        return inner if ctx.in_quote else _wrap("blockquote", inner)
    if kind in ("fence", "code_block"):
        return _code(node)
    if kind == "table":
        return _table(node)
    if kind == "hr":
        return RULE
    if kind == "html_block":
        return escape(node.content.rstrip("\n"))
    if kind == "inline":
        return _inline(node, ctx)
    if node.children:
        return "\n\n".join(_blocks(node, ctx))
    return escape(node.content.strip("\n"))


def _code(node: SyntaxTreeNode) -> str:
    code = node.content.rstrip("\n")
    if not code.strip():
        return ""
    language = node.info.split(maxsplit=1)[0] if node.type == "fence" and node.info.strip() else ""
    if language and _SAFE_LANGUAGE.fullmatch(language):
        return f'<pre><code class="language-{language}">{escape(code)}</code></pre>'
    return f"<pre>{escape(code)}</pre>"


_NESTED = ("bullet_list", "ordered_list", "fence", "code_block", "blockquote", "table")


def _list(node: SyntaxTreeNode, ctx: _Context) -> str:
    ordered = node.type == "ordered_list"
    start = node.attrs.get("start", 1) if ordered else 1
    number = start if isinstance(start, int) else 1
    indent = _INDENT * ctx.depth
    inner_ctx = replace(ctx, depth=ctx.depth + 1)
    # markdown-it hides the paragraphs of a tight list (no blank lines between items).
    tight = all(child.hidden for item in node.children for child in item.children
                if child.type == "paragraph")
    gap = "\n" if tight else "\n\n"
    items: list[str] = []
    for item in node.children:
        marker = f"{indent}{number}." if ordered else f"{indent}{BULLET}"
        number += 1
        blocks: list[str] = []
        starts_inline = False
        for child in item.children:
            block = _block(child, inner_ctx)
            if not block:
                continue
            if child.type not in _NESTED:
                if not blocks:
                    starts_inline = True
                else:
                    block = indent + _INDENT + block
            blocks.append(block)
        if starts_inline:
            items.append(f"{marker} " + gap.join(blocks))
        else:  # the item opens with a code block, a quote or a list: the marker stands alone
            items.append("\n".join([marker, *blocks]))
    return gap.join(items)


def _table(node: SyntaxTreeNode) -> str:
    rows: list[list[str]] = []
    aligns: list[str] = []
    row: Any
    for section in node.children:  # thead, tbody
        for row in section.children:
            cells = []
            for cell in row.children:
                text = _plain_inline(cell.children[0]) if cell.children else ""
                cells.append(" ".join(text.split()))
                if len(rows) == 0:
                    style = str(cell.attrs.get("style", ""))
                    aligns.append(style.removeprefix("text-align:"))
            rows.append(cells)
    if not rows:
        return ""
    columns = max(len(row) for row in rows)
    aligns += [""] * (columns - len(aligns))
    for row in rows:
        row += [""] * (columns - len(row))
    widths = [max(_width(row[column]) for row in rows) for column in range(columns)]

    def line(row: list[str]) -> str:
        return " | ".join(_pad(cell, width, align)
                          for cell, width, align in zip(row, widths, aligns, strict=False)).rstrip()

    lines = [line(rows[0]), "-+-".join("-" * width for width in widths)]
    lines += [line(row) for row in rows[1:]]
    return f"<pre>{escape(chr(10).join(lines))}</pre>"


def _width(text: str) -> int:
    """Columns `text` takes in a monospace font: wide East Asian characters take two."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


# --- public ---------------------------------------------------------------------------------


def markdown_to_telegram_html(md: str) -> str:
    """Telegram HTML for the Markdown `md`; "" when it renders to nothing visible."""
    tree = SyntaxTreeNode(_MD.parse(md))
    return "\n\n".join(_blocks(tree, _Context())).strip()


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_length(html: str, *, length: Callable[[str], int] = len) -> int:
    """The length of the text Telegram shows for `html`: tags removed, entities decoded.

    Counts code points by default, the unit of Telegram's 4096 limit on message text (entity
    offsets are UTF-16, the length limit is not); pass ``length=utf16_len`` to count UTF-16.
    """
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return length("".join(collector.parts))
