"""What the decode fence costs: one photo or voice note decoded in a decode process
(`workers.decoding.DecodeSandbox`) against the same decode in the worker's own process.

    python benchmarks/decode_sandbox.py [--repeats 40]

Prints the start of the decode processes (the forkserver and its preloads, on the first
decode of a worker), then, for each input, the median time in process, fenced, and the
median of the paired differences: the fence's cost per decode (pickling the bytes there and the result back,
through a pipe, plus the pool's hand-over).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.audio import voice_note  # noqa: E402
from tests.helpers.images import image_bytes  # noqa: E402
from workers.audio import decode  # noqa: E402
from workers.decoding import DecodeSandbox  # noqa: E402
from workers.images import prepare_image  # noqa: E402

MAX_PIXELS = 1024 * 1024


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def compare(here: Callable[[], object], fenced: Callable[[], object],
            repeats: int) -> tuple[float, float, float]:
    """Medians (ms) in process, fenced, and of the paired differences: the two run in turns,
    so a busy machine slows both alike."""
    here(), fenced()
    pairs = [(timed(here), timed(fenced)) for _ in range(repeats)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(b - a for a, b in pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    sandbox = DecodeSandbox(memory_bytes=1024 << 20, seconds=30, processes=2)
    started = time.perf_counter()
    sandbox.run(len, b"")
    print(f"decode processes started in {(time.perf_counter() - started) * 1000:.0f} ms\n")
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = []
    for label, data in (("photo 64x48 JPEG", image_bytes(64, 48, fmt="JPEG")),
                        ("photo 1280x960 JPEG", image_bytes(1280, 960, fmt="JPEG")),
                        ("photo 4000x3000 JPEG", image_bytes(4000, 3000, fmt="JPEG"))):
        cases.append((label, lambda d=data: prepare_image(d, MAX_PIXELS),
                      lambda d=data: sandbox.image(d, MAX_PIXELS)))
    for seconds in (2.0, 60.0):
        data = voice_note(seconds)
        cases.append((f"voice note {seconds:g} s OGG/Opus",
                       lambda d=data: decode(d, 300, "audio/ogg"),
                       lambda d=data: sandbox.audio(d, 300, "audio/ogg")))
    print("| input | in process ms | fenced ms | fence cost ms |")
    print("| --- | --- | --- | --- |")
    try:
        for label, here, fenced in cases:
            local, remote, cost = compare(here, fenced, args.repeats)
            print(f"| {label} | {local:.1f} | {remote:.1f} | {cost:+.1f} |")
    finally:
        sandbox.close()


if __name__ == "__main__":
    main()
