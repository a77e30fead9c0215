"""What the guard adds to a turn: the same turns answered without a guard and with one, in the
same run, through the production code (`workers.moderation.Moderator` in front of and behind a
batched `TransformersEngine`).

A turn without a guard is one answer (``--max-new-tokens`` tokens). A turn with a guard is the
input check (the person's text), the same answer, and the output check (prompt and answer):
two short guard generations (SEA-Guard writes ``safe``/``unsafe``, at most 4 tokens). With
``--concurrency`` N, N conversations run at once, as the worker's threads do, and both the
chat model and the guard batch their requests.

    python benchmarks/guard.py                          # tiny random Qwen3-VL chat model and guard, CPU
    python benchmarks/guard.py --model PATH --guard-model PATH --device cuda
    python benchmarks/guard.py --guard-url http://127.0.0.1:8001/v1 --guard-name aisingapore/Qwen-SEA-Guard-4B-2602

Printed as a markdown table: per-turn wall time (median and p90) without and with the guard,
the difference, and the guard's own time per check.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.engine import QUESTIONS  # noqa: E402
from workers.models.chat.base import ChatTurn, GenerationRequest  # noqa: E402
from workers.models.chat.transformers import TransformersEngine  # noqa: E402
from workers.models.guard.base import BaseGuard  # noqa: E402
from workers.models.guard.formats import format_named  # noqa: E402
from workers.moderation import Moderator  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_turns(chat: TransformersEngine, moderator: Moderator | None, turns: int, concurrency: int,
              max_new_tokens: int) -> tuple[list[float], list[float]]:
    """Per-turn seconds, and the guard's seconds per check."""
    guard_seconds: list[float] = []

    def one(i: int) -> float:
        question = QUESTIONS[i % len(QUESTIONS)]
        started = time.perf_counter()
        if moderator is not None:
            decision = moderator.check_input(question, (), "en")
            assert decision is not None
            guard_seconds.append(decision.latency_ms / 1000)
        answer = chat.generate(GenerationRequest(
            "You are a helpful assistant for Southeast Asia.", (ChatTurn("user", question),),
            max_new_tokens)).text
        if moderator is not None:
            decision = moderator.check_output(question, answer or "(empty)", "en")
            assert decision is not None
            guard_seconds.append(decision.latency_ms / 1000)
        return time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        seconds = list(pool.map(one, range(turns)))
    return seconds, guard_seconds


def build_guard(args: argparse.Namespace, guard_path: str | None) -> BaseGuard:
    if args.guard_url:
        from workers.models.guard.openai import OpenAIGuard

        fmt = format_named(args.guard_format or "sea-guard")
        return OpenAIGuard(args.guard_url, args.guard_name, fmt, timeout=60)
    from workers.models.guard.transformers import TransformersGuard

    assert guard_path
    fmt = format_named(args.guard_format or "sea-guard")
    return TransformersGuard(guard_path, fmt, device=args.device, max_batch=32, max_wait=0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="chat checkpoint (default: a tiny random Qwen3-VL)")
    parser.add_argument("--guard-model", help="guard checkpoint (default: a tiny random Qwen3-VL)")
    parser.add_argument("--guard-url", help="an OpenAI-compatible guard server instead")
    parser.add_argument("--guard-name", default="aisingapore/Qwen-SEA-Guard-4B-2602")
    parser.add_argument("--guard-format", choices=["sea-guard", "qwen3guard"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--turns", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model, guard_model = args.model, args.guard_model
        if model is None or (guard_model is None and not args.guard_url):
            from tests.helpers.checkpoints import build_tiny_qwen3_vl

            if model is None:
                model = str(build_tiny_qwen3_vl(
                    Path(tmp) / "chat", generation={"min_new_tokens": args.max_new_tokens}))
            if guard_model is None and not args.guard_url:
                guard_model = str(build_tiny_qwen3_vl(Path(tmp) / "guard"))
        engine = chat = TransformersEngine(model, device=args.device, max_batch=32, max_wait=0.005)
        engine.load()
        guard = build_guard(args, guard_model)
        guard.load()
        moderator = Moderator(guard)
        # Warm both models up (first calls compile kernels and fill caches).
        run_turns(chat, moderator, 4, 2, args.max_new_tokens)

        print(f"chat model: {Path(model).name} on {engine.device}; guard: "
              f"{args.guard_url or Path(guard_model or '').name} ({guard.name}); "
              f"{args.turns} turns a row, {args.max_new_tokens} answer tokens\n")
        print("| concurrent | turn without guard p50 / p90 (ms) | turn with guard p50 / p90 (ms) "
              "| added p50 (ms) | added | guard check mean (ms) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for concurrency in args.concurrency:
            # Interleaved so that drift (thermal, caches) hits both sides alike.
            plain: list[float] = []
            guarded: list[float] = []
            checks: list[float] = []
            for _ in range(2):
                seconds, _ = run_turns(chat, None, args.turns // 2, concurrency,
                                       args.max_new_tokens)
                plain += seconds
                seconds, guard_seconds = run_turns(chat, moderator, args.turns // 2,
                                                   concurrency, args.max_new_tokens)
                guarded += seconds
                checks += guard_seconds
            p50, g50 = statistics.median(plain) * 1000, statistics.median(guarded) * 1000
            print(f"| {concurrency} | {p50:,.0f} / {percentile(plain, 0.9) * 1000:,.0f} "
                  f"| {g50:,.0f} / {percentile(guarded, 0.9) * 1000:,.0f} "
                  f"| {g50 - p50:+,.0f} | {(g50 / p50 - 1) * 100:+.0f}% "
                  f"| {statistics.mean(checks) * 1000:,.1f} |")


if __name__ == "__main__":
    main()
