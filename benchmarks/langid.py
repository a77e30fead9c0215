"""Language identification accuracy and speed: `bot.kernel.language.detect` against langdetect alone.

Reads the project's labelled chat samples (`benchmarks/data/langid/*.tsv`, CC0, see the README
there), runs both detectors on every line in the same process, and prints a markdown table:
per-language accuracy on sentences and on 1-3-word fragments, the macro averages, and lines a
second for ours (and for langdetect, for scale). langdetect runs seeded (`DetectorFactory.seed
= 0`), as it must to be deterministic, with zh-cn/zh-tw read as zh; it has no Malay, Burmese,
Khmer or Lao, so it scores 0 there by construction.

    python benchmarks/langid.py [--errors] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.kernel.language import detect, warm_up  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "langid"
LANGUAGES = ("en", "id", "ms", "tl", "th", "vi", "ta", "my", "km", "lo", "zh")


def load(path: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        language, sep, text = line.partition("\t")
        if not sep or language not in LANGUAGES:
            raise SystemExit(f"{path}:{number}: expected 'lang<TAB>text', got {line!r}")
        rows.append((language, text))
    return rows


def ours(text: str) -> str | None:
    return detect(text).language


def langdetect_alone() -> Callable[[str], str | None]:
    from langdetect import DetectorFactory, LangDetectException
    from langdetect import detect as ld_detect

    DetectorFactory.seed = 0
    names = {"zh-cn": "zh", "zh-tw": "zh"}

    def guess(text: str) -> str | None:
        try:
            code = ld_detect(text)
        except LangDetectException:
            return None
        return names.get(code, code)

    return guess


def accuracy(guess: Callable[[str], str | None], rows: list[tuple[str, str]],
             errors: list[tuple[str, str | None, str]] | None = None) -> dict[str, float]:
    right = dict.fromkeys(LANGUAGES, 0)
    total = dict.fromkeys(LANGUAGES, 0)
    for language, text in rows:
        answer = guess(text)
        total[language] += 1
        if answer == language:
            right[language] += 1
        elif errors is not None:
            errors.append((language, answer, text))
    return {language: right[language] / total[language] for language in LANGUAGES
            if total[language]}


def lines_per_second(guess: Callable[[str], str | None], texts: list[str],
                     repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            guess(text)
    return repeat * len(texts) / (time.perf_counter() - start)


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list our misreadings")
    parser.add_argument("--repeat", type=int, default=3, help="passes for the speed figure")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    sets = {"sentences": load(args.data / "sentences.tsv"),
            "fragments": load(args.data / "fragments.tsv")}
    start = time.perf_counter()
    warm_up()
    load_seconds = time.perf_counter() - start
    baseline = langdetect_alone()

    results: dict[tuple[str, str], dict[str, float]] = {}
    errors: dict[str, list[tuple[str, str | None, str]]] = {}
    for name, rows in sets.items():
        errors[name] = []
        results[("ours", name)] = accuracy(ours, rows, errors[name])
        results[("langdetect", name)] = accuracy(baseline, rows)

    texts = [text for rows in sets.values() for _, text in rows]
    speed_ours = lines_per_second(ours, texts, args.repeat)
    speed_baseline = lines_per_second(baseline, texts, 1)

    columns = [("ours", "sentences"), ("langdetect", "sentences"),
               ("ours", "fragments"), ("langdetect", "fragments")]
    counts = {name: len(rows) for name, rows in sets.items()}
    print(f"Language identification on the project's chat samples "
          f"({counts['sentences']} sentences, {counts['fragments']} fragments of 1-3 words, "
          f"{len(LANGUAGES)} languages).\n")
    print("| language | sentences: ours | sentences: langdetect | fragments: ours "
          "| fragments: langdetect |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for language in LANGUAGES:
        cells = [percent(results[column].get(language, 0.0)) for column in columns]
        print(f"| {language} | " + " | ".join(cells) + " |")
    macro = [percent(statistics.mean(results[column].values())) for column in columns]
    print("| **macro average** | " + " | ".join(f"**{cell}**" for cell in macro) + " |")
    print()
    print(f"Speed, one core, all {len(texts)} lines mixed: ours {speed_ours:,.0f} lines/s "
          f"(model loaded once in {load_seconds:.2f} s), langdetect {speed_baseline:,.0f} "
          f"lines/s.")

    if args.errors:
        for name, wrong in errors.items():
            print(f"\nOur misreadings in {name} ({len(wrong)}):")
            for language, answer, text in wrong:
                print(f"  {language} -> {answer or 'none'}: {text}")


if __name__ == "__main__":
    main()
