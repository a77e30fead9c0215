"""Markdown to Telegram HTML: the right tags, safe for any input, always well formed."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.telegram_html import escape, markdown_to_telegram_html, visible_length
from adapters.textsplit import split_text, utf16_len

render = markdown_to_telegram_html

ALLOWED = {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}


class _Checker(HTMLParser):
    """Parses Telegram HTML and records every way it breaks Telegram's rules."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.errors.append(f"tag {tag}")
        names = [name for name, _ in attrs]
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if names != ["href"] or not re.match(r"(https?://|tg://|mailto:)", href):
                self.errors.append(f"link {attrs}")
        elif tag == "code" and attrs:
            if self.stack[-1:] != ["pre"] or names != ["class"]:
                self.errors.append(f"code attrs {attrs}")
        elif attrs:
            self.errors.append(f"attrs on {tag}: {attrs}")
        if self.stack and self.stack[-1] == "code" or "pre" in self.stack and tag != "code":
            self.errors.append(f"{tag} inside code/pre")
        if tag == "blockquote" and "blockquote" in self.stack:
            self.errors.append("nested blockquote")
        if tag in ("a", "code") and "a" in self.stack:
            self.errors.append(f"{tag} inside a link")
        if tag == "a" and "code" in self.stack:
            self.errors.append("link inside code")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing {tag}")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> with {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.errors.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.errors.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.errors.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.errors.append("unknown declaration")


_TAG = re.compile(r'</?(?:b|i|u|s|a|code|pre|blockquote)>|<a href="[^"<>]*">|'
                  r'<code class="language-[^"<>]*">')


def assert_telegram_html(html: str) -> None:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.errors, (checker.errors, html)
    assert not checker.stack, (checker.stack, html)
    bare = _TAG.sub("", html)
    assert "<" not in bare and ">" not in bare, html
    # The only entities: the four Telegram knows by name.
    assert not re.search(r"&(?!(?:amp|lt|gt|quot);)", html), html
    assert html == html.strip()


# --- inline ---------------------------------------------------------------------------------


def test_plain_text() -> None:
    assert render("Hello, world") == "Hello, world"


def test_bold_italic_strike_code() -> None:
    assert render("**bold** and __bold__") == "<b>bold</b> and <b>bold</b>"
    assert render("*it* and _it_") == "<i>it</i> and <i>it</i>"
    assert render("~~gone~~") == "<s>gone</s>"
    assert render("`x < 1`") == "<code>x &lt; 1</code>"
    assert render("***both***") == "<i><b>both</b></i>"


def test_links() -> None:
    assert render("[AI Singapore](https://aisingapore.org)") == (
        '<a href="https://aisingapore.org">AI Singapore</a>')
    assert render("<https://sea-lion.ai>") == (
        '<a href="https://sea-lion.ai">https://sea-lion.ai</a>')
    assert render("[mail](mailto:hi@example.com)") == (
        '<a href="mailto:hi@example.com">mail</a>')
    assert render("[me](tg://user?id=1)") == '<a href="tg://user?id=1">me</a>'


def test_link_attribute_is_quoted_and_escaped() -> None:
    html = render('[q](https://e.com/?a=1&b="2")')
    assert html == '<a href="https://e.com/?a=1&amp;b=%222%22">q</a>'
    assert_telegram_html(html)


def test_unsafe_and_relative_links_keep_only_their_text() -> None:
    # markdown-it refuses javascript: links, so the source stays literal text.
    assert render("[x](javascript:alert(1))") == "[x](javascript:alert(1))"
    assert render("[x](JavaScript:alert(1))") == "[x](JavaScript:alert(1))"
    assert render("[rel](/local/path)") == "rel"
    assert render("[ftp](ftp://example.com/file)") == "ftp"
    assert render("[data](data:text/html;base64,PHNjcmlwdD4=)") == (
        "[data](data:text/html;base64,PHNjcmlwdD4=)")


def test_code_inside_link_is_plain() -> None:
    html = render("[`pip install`](https://pypi.org)")
    assert html == '<a href="https://pypi.org">pip install</a>'


def test_image_becomes_link() -> None:
    assert render("![a cat](https://e.com/cat.png)") == '<a href="https://e.com/cat.png">a cat</a>'
    assert render("![](https://e.com/cat.png)") == (
        '<a href="https://e.com/cat.png">https://e.com/cat.png</a>')
    assert render("![local](cat.png)") == "local"
    html = render("[![logo](https://e.com/l.png)](https://e.com)")
    assert html == '<a href="https://e.com">logo</a>'


def test_escaping() -> None:
    assert render("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert render("AT&T &amp; co") == "AT&amp;T &amp; co"
    assert escape("<&>") == "&lt;&amp;&gt;"


def test_html_in_source_is_text() -> None:
    assert render("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert render("a <b>bold</b> tag") == "a &lt;b&gt;bold&lt;/b&gt; tag"
    assert render('<a href="javascript:x">y</a>') == '&lt;a href="javascript:x"&gt;y&lt;/a&gt;'
    assert render("<!-- comment -->") == "&lt;!-- comment --&gt;"


def test_unclosed_markup_stays_literal() -> None:
    assert render("**unclosed") == "**unclosed"
    assert render("`unclosed") == "`unclosed"
    assert render("_half") == "_half"


def test_snake_case_stays_literal() -> None:
    assert render("use snake_case_words and __init__ here") == (
        "use snake_case_words and <b>init</b> here")
    assert render("my_var_name = other_var_name") == "my_var_name = other_var_name"


def test_line_breaks_are_kept() -> None:
    assert render("one\ntwo  \nthree") == "one\ntwo\nthree"


# --- blocks ---------------------------------------------------------------------------------


def test_paragraphs_separated_by_one_blank_line() -> None:
    assert render("one\n\n\n\ntwo\n\n") == "one\n\ntwo"


def test_headings_become_bold_lines() -> None:
    assert render("# Title\n\nText\n\n### Small *one*") == (
        "<b>Title</b>\n\nText\n\n<b>Small <i>one</i></b>")
    assert render("Setext\n======") == "<b>Setext</b>"


def test_bullet_list() -> None:
    assert render("- one\n- **two**\n* three") == "• one\n• <b>two</b>\n\n• three"
    assert render("- one\n- two") == "• one\n• two"


def test_ordered_list_keeps_numbers() -> None:
    assert render("1. one\n2. two\n3. three") == "1. one\n2. two\n3. three"
    assert render("4. four\n5. five") == "4. four\n5. five"


def test_nested_list_is_indented() -> None:
    assert render("- a\n  - b\n    - c\n- d") == "• a\n   • b\n      • c\n• d"
    assert render("1. step\n   - detail\n2. next") == "1. step\n   • detail\n2. next"


def test_loose_list() -> None:
    assert render("- one\n\n- two\n\n  more") == "• one\n\n• two\n\n   more"


def test_list_item_with_code() -> None:
    html = render("1. Install:\n   ```bash\n   pip install x\n   ```\n2. Run")
    assert html == ('1. Install:\n<pre><code class="language-bash">pip install x</code></pre>\n'
                    "2. Run")


def test_fenced_code() -> None:
    html = render("```python\nif a < b:\n    print('&')\n```")
    assert html == ('<pre><code class="language-python">if a &lt; b:\n'
                    "    print('&amp;')</code></pre>")
    assert render("```\nplain\n```") == "<pre>plain</pre>"
    assert render("    indented code") == "<pre>indented code</pre>"
    assert render("```c++\nint x;\n```") == '<pre><code class="language-c++">int x;</code></pre>'


def test_fence_language_is_sanitised() -> None:
    assert render('```"><script>\nx\n```') == "<pre>x</pre>"


def test_markdown_inside_code_is_literal() -> None:
    assert render("```\n**not bold** <b>\n```") == "<pre>**not bold** &lt;b&gt;</pre>"
    assert render("`**x**`") == "<code>**x**</code>"


def test_empty_code_block_is_dropped() -> None:
    assert render("```\n```") == ""
    assert render("before\n\n```\n\n```\n\nafter") == "before\n\nafter"


def test_blockquote() -> None:
    assert render("> quoted *text*\n> more") == "<blockquote>quoted <i>text</i>\nmore</blockquote>"


def test_nested_blockquote_is_flattened() -> None:
    html = render("> outer\n> > inner")
    assert html == "<blockquote>outer\n\ninner</blockquote>"
    assert_telegram_html(html)


def test_horizontal_rule() -> None:
    assert render("above\n\n---\n\nbelow") == "above\n\n──────────\n\nbelow"


def test_table_is_monospace_text() -> None:
    html = render("| Fruit | Qty |\n|:--|--:|\n| 苹果 | 3 |\n| banana | **12** |")
    assert html == ("<pre>Fruit  | Qty\n"
                    "-------+----\n"
                    "苹果   |   3\n"
                    "banana |  12</pre>")


def test_table_cells_are_escaped() -> None:
    html = render("| a | b |\n|---|---|\n| x<y | [l](https://e.com) |")
    assert html == "<pre>a   | b\n----+--\nx&lt;y | l</pre>"


def test_empty_input() -> None:
    assert render("") == ""
    assert render("   \n\n  ") == ""


def test_thai_and_emoji_untouched() -> None:
    assert render("สวัสดีครับ 👋 **ยินดี**") == "สวัสดีครับ 👋 <b>ยินดี</b>"


def test_nasty_inputs_are_well_formed() -> None:
    for source in ["a < b && c > d", "**unclosed", "<script>", "[x](javascript:alert(1))",
                   "snake_case_words", "*a **b* c**", "[a](<b>)", "` ` `", "> - ```\n> x",
                   "- > # h\n  > ```\n  > y", "***\n___", "<", "&", "&#0;", "\x00", "|a|\n|-|",
                   "[link *with `code` inside*](https://x.y)", "**[a](https://x.y)**"]:
        assert_telegram_html(render(source))


# --- visible_length -------------------------------------------------------------------------


def test_visible_length() -> None:
    assert visible_length("<b>bold</b> &amp; <a href=\"https://x.y\">link</a>") == 11
    assert visible_length("&lt;3") == 2
    assert visible_length('<pre><code class="language-py">x</code></pre>') == 1
    assert visible_length("😀") == 1
    assert visible_length("😀", length=utf16_len) == 2


def test_rendered_parts_stay_within_telegram_limit() -> None:
    paragraph = "**Singapore** is a *city-state* with `four` official languages. " * 30
    text = "\n\n".join([paragraph.strip()] * 20)
    for part in split_text(text, 4096):
        html = render(part)
        assert_telegram_html(html)
        assert visible_length(html) <= len(part) <= 4096


# --- properties -----------------------------------------------------------------------------

_MARKDOWN_BITS = st.sampled_from([
    "*", "**", "_", "__", "~~", "`", "```", "```py\n", "\n```\n", "[", "]", "(", ")", "](",
    "](https://e.com/x?a=1&b=2)", "](javascript:x)", "![", "<", ">", "&", "&amp;", '"', "'",
    "#", "# ", "\n# ", "- ", "\n- ", "\n  - ", "1. ", "\n2. ", "\n\n", "\n", "> ", "\n> ",
    "\n> > ", "---", "\n---\n", "| a | b |\n|---|---|\n| ", " | ", "\n|", "    ", "\\", "<b>",
    "</b>", "<script>", "<https://x.y>", "<a@b.c>", "&#x27;", "&quot;", "word", "snake_case",
    "สวัสดี", "中文", "😀", " ",
])
_MARKDOWN = st.lists(st.one_of(_MARKDOWN_BITS, st.text(max_size=5)), max_size=60).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_MARKDOWN)
def test_property_output_is_well_formed(source: str) -> None:
    html = render(source)
    assert_telegram_html(html)
    assert visible_length(html) >= 0


@settings(max_examples=200, deadline=None)
@given(source=st.text(max_size=300))
def test_property_any_text_is_well_formed(source: str) -> None:
    assert_telegram_html(render(source))
