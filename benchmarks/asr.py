"""Speech recognition speed: seconds of work per second of audio, one clip at a time and batched.

For voice notes of 5, 15, 30 and 60 seconds (a tone with a tremolo, OGG/Opus as Telegram and
WhatsApp send them), each clip is decoded with PyAV and transcribed by `TransformersRecogniser`
(the transformers speech-recognition pipeline, 30-second chunking, the language detected per
clip): first one clip at a time, then `--concurrency` clips submitted together from as many
threads, as the inference worker's Celery threads do (the host's batcher gathers them,
`workers.models.batching`). Every 30-second window generates exactly `--tokens` tokens (about
what 30 s of speech holds), so the numbers compare like with like although the weights are
random. Printed as a markdown table.

    python benchmarks/asr.py                              # tiny random Whisper, CPU
    python benchmarks/asr.py --real-whisper-turbo-config  # large-v3-turbo shapes, random (GPU)
    python benchmarks/asr.py --model PATH                 # any Whisper checkpoint
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.helpers.audio import voice_note
from workers.audio import Clip, decode
from workers.models.speech.transformers import TransformersRecogniser

LENGTHS = (5.0, 15.0, 30.0, 60.0)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a Whisper checkpoint (default: built here)")
    parser.add_argument("--real-whisper-turbo-config", action="store_true",
                        help="random weights in openai/whisper-large-v3-turbo's shapes")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: CUDA if present)")
    parser.add_argument("--tokens", type=int, default=None,
                        help="tokens generated per 30-second window (default 24 tiny, 96 turbo)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tokens = args.tokens or (96 if args.real_whisper_turbo_config else 24)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from tests.helpers.whisper import build_tiny_whisper

            model = str(build_tiny_whisper(Path(tmp) / "whisper", max_new_tokens=tokens,
                                           min_new_tokens=tokens,
                                           turbo_shapes=args.real_whisper_turbo_config))
        recogniser = TransformersRecogniser(model, device=args.device,
                                            batch_size=args.concurrency,
                                            max_batch=args.concurrency, max_wait=0.05)
        started = time.perf_counter()
        recogniser.load()
        device = str(recogniser._pipe.device)
        print(f"model: {'large-v3-turbo shapes' if args.real_whisper_turbo_config else model}"
              f" on {device}, loaded in {time.perf_counter() - started:.1f} s; {tokens} tokens "
              f"per 30 s window; torch threads {torch.get_num_threads()}")
        name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
        print(f"device: {name}\n")
        recogniser.transcribe(decode(voice_note(2.0), 300, "audio/ogg"))  # warm-up
        print("| clip | decode ms | one at a time: s per s of audio | "
              f"{args.concurrency} together: s per s of audio | speed-up |")
        print("| --- | --- | --- | --- | --- |")
        for seconds in LENGTHS:
            data = voice_note(seconds)
            decode_ms = statistics.median(timed(lambda d=data: decode(d, 600, "audio/ogg"))
                                          for _ in range(args.repeats)) * 1000
            clip = decode(data, 600, "audio/ogg")
            one = statistics.median(timed(lambda c=clip: recogniser.transcribe(c))
                                    for _ in range(args.repeats)) / seconds
            together = statistics.median(_together(recogniser, clip, args.concurrency)
                                         for _ in range(args.repeats))
            per_second = together / (seconds * args.concurrency)
            print(f"| {seconds:.0f} s | {decode_ms:.1f} | {one:.4f} | {per_second:.4f} | "
                  f"{one / per_second:.1f}x |")


def _together(recogniser: TransformersRecogniser, clip: Clip, count: int) -> float:
    barrier = threading.Barrier(count + 1)

    def call() -> None:
        barrier.wait()
        recogniser.transcribe(clip)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
