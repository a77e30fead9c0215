"""Every function that runs regular expressions (or parses markup) over a person's or the
model's text costs time linear in that text (issue 18, item 1).

A pattern such as `\\S+@\\S+\\.\\w+` backtracks cubically on "@.@.@.": 2,000 characters took
seconds of one core with the GIL held, so one message froze every thread of an I/O worker.
Here each function meets the known ReDoS shapes (long runs of "@", ".", "@.", whitespace, nested
and unclosed markup, runs of `*_~`, unclosed backticks and tags, ...) at 20,000-100,000
characters, and then what Hypothesis builds as prefix + pump * count + suffix from what these
patterns care about. Every compiled pattern of the audited modules is also run alone, the way
its module runs it, at growing lengths.

Time is the CPU time of the test's thread, so other work on the machine does not count, and
the budget is relative: a call may take `RATIO` times what the same function takes on ordinary
text of the same length (the linear baseline, best of three), and never less than `FLOOR`. A
hostile input gets three tries and passes on the first one within budget. A linear function
stays within a small factor of its baseline (Markdown's worst shapes, about 13 times); the
cubic e-mail pattern was thousands of times over it.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable, Iterator
from functools import cache
from types import ModuleType

import pytest
import regex
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters import telegram_html, textsplit
from adapters.markup import html_to_plain, html_to_whatsapp, markdown_to_whatsapp
from adapters.telegram_html import markdown_to_telegram_html, visible_length
from adapters.textsplit import split_text, utf16_len
from bot.kernel import language, prompt
from bot.kernel import tokens as kernel_tokens
from bot.kernel.language import choose_reply_language, detect, is_other_language, warm_up
from bot.kernel.prompt import clean_reply
from bot.kernel.tokens import tokens
from storage.log import queries
from storage.log.queries import search_words
from workers.models.guard import GuardRequest, GuardUnavailable, formats, keywords
from workers.models.guard.formats import Qwen3GuardFormat
from workers.models.guard.keywords import PATTERN_SECONDS, KeywordsGuard

#: A hostile input may take this many times its function's time on ordinary text ...
# Timing checks on inputs of real size: seconds each, not a unit test's milliseconds.
pytestmark = pytest.mark.integration

RATIO = 30.0
#: ... and at least this long (seconds): timer noise and a busy machine stay below it.
FLOOR = 0.25
SIZE = 20_000

#: Ordinary text: a person's message and a formatted answer, as they come.
ORDINARY = ("Selamat pagi! Boleh terangkan cara buat nasi lemak? Mail siti@example.my or see "
            "https://example.com/resepi.\n\n**Nasi lemak** is *rice* cooked in `coconut milk`, "
            "with ~~anchovies~~ sambal:\n\n1. Rinse the [rice](https://example.com/rice).\n"
            "2. Add _pandan_ leaves.\n\n> Tip: use **fresh** santan.\n\n| item | qty |\n"
            "|---|---:|\n| rice | 2 |\n\n```python\nprint('sedap')\n```\n\n")


def _keywords_guard(tmp_path_factory: pytest.TempPathFactory) -> KeywordsGuard:
    folder = tmp_path_factory.mktemp("keywords")
    path = folder / "keywords.txt"
    path.write_text("# words, a Thai word, and an operator's pattern\n"
                    "free money\nbuy followers\n[th]\nหวยเถื่อน\n[*]\n"
                    "re:\\bcasino\\s+(?:bonus|online)\\b\n", encoding="utf-8")
    guard = KeywordsGuard(path)
    guard.load()
    return guard


def _functions(guard: KeywordsGuard) -> dict[str, Callable[[str], object]]:
    """Each function that reads a person's text (the first group) or the model's."""
    qwen3guard = Qwen3GuardFormat()
    return {
        # a person's text: language detection, the reply language, the keywords guard, and
        # the console's search box
        "detect": detect,
        "choose_reply_language": lambda text: choose_reply_language(
            text, current="ms", hint="id-ID", default="en"),
        "keywords_guard": lambda text: guard.check(GuardRequest(prompt=text, language="th")),
        "search_words": search_words,
        # the knowledge base's tokens of a question (and of a document's passages)
        "knowledge_tokens": tokens,
        # the model's text: the answer's language check, reasoning blocks, the formatting for
        # each platform, splitting into parts, and a guard model's answer
        "is_other_language": lambda text: is_other_language(text, "en"),
        "clean_reply": clean_reply,
        # (Markdown to Telegram HTML, then its length as Telegram counts it; to WhatsApp's
        # marks; LINE's plain text is the same parse and `html_to_plain`)
        "visible_length": lambda text: visible_length(markdown_to_telegram_html(text)),
        "markdown_to_whatsapp": markdown_to_whatsapp,
        # the HTML stage alone, on markup no Markdown parse would write (unclosed tags)
        "html_to_whatsapp": html_to_whatsapp,
        "html_to_plain": html_to_plain,
        "split_text": lambda text: split_text(text, 4096),
        "split_text_utf16": lambda text: split_text(text, 5000, length=utf16_len),
        "guard_answer": qwen3guard.parse,
    }


NAMES = [
    "detect", "choose_reply_language", "keywords_guard", "search_words", "knowledge_tokens",
    "is_other_language",
    "clean_reply", "visible_length", "markdown_to_whatsapp", "html_to_whatsapp", "html_to_plain",
    "split_text", "split_text_utf16", "guard_answer",
]


def _pumped(pump: str, size: int = SIZE, prefix: str = "", suffix: str = "") -> str:
    return prefix + pump * max(1, (size - len(prefix) - len(suffix)) // len(pump)) + suffix


#: Known ReDoS shapes: (name, pump, size, prefix, suffix); the text is prefix + pump * count +
#: suffix, `size` characters long.
SHAPE_SPECS: list[tuple[str, str, int, str, str]] = [
    ("@ run", "@", SIZE, "", ""),
    ("@. run", "@.", SIZE, "", ""),
    (".@ run", ".@", SIZE, "", ""),
    ("a@ run", "a@", SIZE, "", ""),
    ("@a. run", "@a.", SIZE, "", ""),
    ("a@a. run", "a@a.", SIZE, "", ""),
    ("dotted labels", "a.", SIZE, "", "!"),
    ("hyphenated labels", "a-", SIZE, "", "!"),
    ("labels after hyphens", "-a.", SIZE, "", ""),
    ("false top-level domains", "a.comx", SIZE, "", ""),
    ("one address, long domain", "a.", SIZE, "x@", ""),
    ("url scheme run", "http://", SIZE, "", ""),
    ("long url host", "a", SIZE, "http://", " x"),
    ("www run", "www.", SIZE, "", ""),
    ("mentions", "@a.", SIZE, " ", ""),
    ("spaces", " ", SIZE, "", "a"),
    ("tabs and newlines", "\t\n", SIZE, "", "a"),
    ("blank lines", "\n \n", SIZE, "", "a"),
    ("laughter", "a", SIZE, "h", "b"),
    ("laughter pairs", "ah", SIZE, "", "b"),
    ("affix run", "a", SIZE, "meng", "1"),
    ("hyphen word run", "a-", SIZE, "", "1"),
    ("apostrophes", "a'", SIZE, "", "'"),
    ("stars", "*", SIZE, "", "a"),
    ("underscores", "_", SIZE, "", "a"),
    ("tildes", "~", SIZE, "", "a"),
    ("backticks", "`", SIZE, "", "a"),
    ("star words", "*a", SIZE, "", ""),
    ("strong words", "**a ", SIZE, "", ""),
    ("underscore words", "_a", SIZE, "", ""),
    ("strike words", "~~a", SIZE, "", ""),
    ("code spans", "`a", SIZE, "", ""),
    ("fences", "```\n", SIZE, "", ""),
    ("unclosed fence", "a\n", SIZE, "```python\n", ""),
    ("brackets", "[", SIZE, "", ""),
    ("link openers", "[a](", SIZE, "", ""),
    ("image openers", "![[", SIZE, "", ""),
    ("links", "[a](http://a.com) ", SIZE, "", ""),
    ("angle brackets", "<", SIZE, "", ""),
    ("unclosed bold tags", "<b>", SIZE, "</b>", ""),
    ("unclosed link tags", '<a href="x">', SIZE, "</a>", ""),
    ("unclosed pre tags", "<pre>", SIZE, "</pre>", ""),
    ("unclosed attributes", "<pre ", SIZE, "", "</pre>"),
    ("unclosed quotes", '<a href="', SIZE, "", "</a>"),
    ("tag openers", "<a", SIZE, "", ""),
    ("unclosed think", "<think>", SIZE, "", ""),
    ("think closers", "</think>", SIZE, "", ""),
    ("quotes", "> ", SIZE, "", "a"),
    ("bullets", "- ", SIZE, "", "a"),
    ("numbered", "1. ", SIZE, "", "a"),
    ("tables", "|a", SIZE, "", "\n|-|\n"),
    ("table rows", "|a|\n", SIZE, "|a|\n|-|\n", ""),
    ("backslashes", "\\", SIZE, "", ""),
    ("ampersands", "&#", SIZE, "", ""),
    ("double quotes", '"', SIZE, "", "a"),
    ("guard answers", "Safety: ", SIZE, "", "Categories: "),
    ("thai", "ภาษาไทย", SIZE, "", ""),
    ("zero width spaces", "\u200b", SIZE, "", "a"),
    ("combining marks", "a\u0301", SIZE, "", ""),
    ("emoji with modifiers", "\U0001f44d\U0001f3fd\u200d", SIZE, "", ""),
    ("flags", "\U0001f1f2\U0001f1fe", SIZE, "", ""),
    ("big @. run", "@.", 100_000, "", ""),
    ("big dotted labels", "a.", 100_000, "", "!"),
    ("big angle brackets", "<", 100_000, "", ""),
    ("big stars", "*", 100_000, "", "a"),
]
SHAPES: list[tuple[str, str]] = [(name, _pumped(pump, size, prefix, suffix))
                                 for name, pump, size, prefix, suffix in SHAPE_SPECS]


@pytest.fixture(scope="module")
def functions(tmp_path_factory) -> dict[str, Callable[[str], object]]:
    warm_up()  # the language model loads once, outside any measurement
    return _functions(_keywords_guard(tmp_path_factory))


def _seconds(call: Callable[[str], object], text: str) -> float:
    """CPU seconds of this thread: what the call costs, whatever else the machine runs."""
    started = time.thread_time()
    call(text)
    return time.thread_time() - started


@cache
def _ordinary(size: int) -> str:
    return _pumped(ORDINARY, size)


def _budget(call: Callable[[str], object], size: int, baselines: dict[int, float]) -> float:
    """`RATIO` times the call's best of three on ordinary text of `size` characters."""
    if size not in baselines:
        baselines[size] = min(_seconds(call, _ordinary(size)) for _ in range(3))
    return max(FLOOR, RATIO * baselines[size])


def _within_budget(call: Callable[[str], object], text: str,
                   baselines: dict[int, float]) -> tuple[bool, float, float]:
    """(within budget on one of three tries, the best time, the budget)."""
    budget = _budget(call, len(text), baselines)
    best = float("inf")
    for _ in range(3):
        best = min(best, _seconds(call, text))
        if best <= budget:
            return True, best, budget
    return False, best, budget


@pytest.mark.parametrize("name", NAMES)
def test_known_redos_shapes_cost_linear_time(functions, name):
    call = functions[name]
    baselines: dict[int, float] = {}
    slow = []
    for shape, text in SHAPES:
        ok, seconds, budget = _within_budget(call, text, baselines)
        if not ok:
            slow.append(f"{shape} ({len(text)} chars): {seconds:.2f}s, budget {budget:.2f}s")
    assert not slow, f"{name} is slow on:\n" + "\n".join(slow)


#: What these patterns treat specially: characters, a few multi-character tokens, letters of
#: several scripts. A pump joins one to four of them; prefix and suffix are any characters.
ATOMS = ["@", ".", "-", "_", "*", "~", "`", "<", ">", "/", ":", "[", "]", "(", ")", "!", "#",
         "\\", "|", "&", '"', "'", "a", "h", "k", "1", "อ", "中", "\u200b", " ", "\n",
         "http://", "www.", "com", "<b>", "</b>", "<think>", "```"]
PUMPS = st.lists(st.sampled_from(ATOMS), min_size=1, max_size=4).map("".join)
AFFIXES = st.text(alphabet="".join(atom for atom in ATOMS if len(atom) == 1), max_size=8)
#: Examples a function gets: fewer where one call parses Markdown (a tenth of a second).
EXAMPLES = {"visible_length": 15, "markdown_to_whatsapp": 15}


@pytest.mark.parametrize("name", NAMES)
def test_generated_pumps_cost_linear_time(functions, name):
    call = functions[name]
    baselines: dict[int, float] = {}

    # No shrinking: each step would run a slow call again, and the first example found over
    # budget says enough (its text is in the message).
    @settings(max_examples=EXAMPLES.get(name, 40), deadline=None, database=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(prefix=AFFIXES, pump=PUMPS, suffix=AFFIXES, size=st.sampled_from([5_000, SIZE]))
    def one(prefix: str, pump: str, suffix: str, size: int) -> None:
        text = _pumped(pump, size, prefix, suffix)
        ok, seconds, budget = _within_budget(call, text, baselines)
        assert ok, f"{name}: {seconds:.2f}s (budget {budget:.2f}s) on {text[:40]!r}..."

    one()


#: Modules whose every compiled pattern reads a person's or the model's text and is linear on
#: its own. (adapters.markup's patterns are linear through how they are run, `_sub`: they are
#: checked through `html_to_whatsapp` and `html_to_plain` above.)
PATTERN_MODULES: tuple[ModuleType, ...] = (language, prompt, telegram_html, textsplit,
                                            queries, formats, keywords, kernel_tokens)
#: A pattern meets each shape at growing lengths, stopping at the first over budget (a cubic
#: pattern is over it at the first, long before the last would end).
PATTERN_SIZES = (2_000, 20_000, 100_000)


_CALLS = re.compile(r"\b(_?[A-Z][A-Z0-9_]*)\.(search|sub|subn|finditer|findall|split|match|fullmatch)\(")
_MODE = {"match": "match", "fullmatch": "fullmatch"}  # any other method searches the text


def _module_patterns() -> Iterator[tuple[str, re.Pattern[str] | regex.Pattern[str], frozenset[str]]]:
    """(name, pattern, how its module runs it): "search" (from every position, as `sub`,
    `finditer` and `search` do), "match" or "fullmatch", read from the module's source; a
    pattern the source never calls by name (handed around in a tuple) gets all three."""
    for module in PATTERN_MODULES:
        source = inspect.getsource(module)
        used: dict[str, set[str]] = {}
        for name, method in _CALLS.findall(source):
            used.setdefault(name, set()).add(_MODE.get(method, "search"))
        for name, value in sorted(vars(module).items()):
            if isinstance(value, (re.Pattern, regex.Pattern)):
                modes = used.get(name) or {"search", "match", "fullmatch"}
                yield f"{module.__name__}.{name}", value, frozenset(modes)


PATTERNS = {name: (pattern, modes) for name, pattern, modes in _module_patterns()}
CASES = [(name, mode) for name, (_, modes) in sorted(PATTERNS.items()) for mode in sorted(modes)]


def test_the_audited_modules_have_patterns():
    # The list above is not empty by accident (a rename would empty it silently), and the
    # patterns' uses are read from the source.
    assert {name.rsplit(".", 1)[0] for name in PATTERNS} >= {
        "bot.kernel.language", "adapters.telegram_html", "adapters.textsplit", "storage.log.queries",
        "workers.models.guard.formats", "workers.models.guard.keywords", "bot.kernel.tokens"}
    assert PATTERNS["bot.kernel.language._EMAIL"][1] == {"search"}
    assert PATTERNS["bot.kernel.language._LAUGHTER"][1] == {"fullmatch"}


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_every_pattern_is_linear_on_its_own(name, mode):
    """Each pattern, run the way its module runs it, whatever the text's length: a cap on the
    length elsewhere (detection reads 2,000 characters) is not what keeps it cheap."""
    pattern = PATTERNS[name][0]
    call: Callable[[str], object]
    if mode == "search":
        def call(text: str) -> object:
            return sum(1 for _ in pattern.finditer(text))
    else:
        call = getattr(pattern, mode)
    baselines: dict[int, float] = {}
    slow = []
    for shape, pump, length, prefix, suffix in SHAPE_SPECS:
        if length > SIZE:
            continue  # a "big" shape: the sizes below grow to it anyway
        for size in PATTERN_SIZES:
            text = _pumped(pump, size, prefix, suffix)
            ok, seconds, budget = _within_budget(call, text, baselines)
            if not ok:
                slow.append(f"{shape} ({size} chars): {seconds:.2f}s, budget {budget:.2f}s")
                break
    assert not slow, f"{name}.{mode} is slow on:\n" + "\n".join(slow)


def test_an_operators_runaway_pattern_is_stopped(tmp_path):
    """The keywords file's own regular expressions are the operator's, not ours to make
    linear: one that backtracks without end is stopped at its time limit, and the check has
    no verdict (GUARD_FAIL decides), instead of holding the worker for minutes."""
    path = tmp_path / "keywords.txt"
    path.write_text("free money\nre:(a|aa)+$\n", encoding="utf-8")
    guard = KeywordsGuard(path)
    started = time.thread_time()
    with pytest.raises(GuardUnavailable):
        guard.check(GuardRequest(prompt="a" * 36 + "b"))  # `re` took about 5 s on this
    assert time.thread_time() - started < 4 * PATTERN_SECONDS
    # Text it answers quickly is judged as before.
    assert guard.check(GuardRequest(prompt="aaaa")).label == "unsafe"
    assert guard.check(GuardRequest(prompt="free money now")).label == "unsafe"
    assert guard.check(GuardRequest(prompt="hello there")).label == "safe"
