"""Generation throughput: concurrent conversations batched together against one at a time.

For 1, 4, 16 and 32 concurrent conversations, the same requests are generated twice in the same run:

- one at a time: ``TransformersEngine.generate_batch([request])`` for each request in turn (batch size 1);
- batched: one thread per conversation calls ``TransformersEngine.generate`` at the same moment, as
  the worker's Celery threads do, and the host's batcher (`workers.models.batching`) generates them
  together.

Every request generates exactly ``--max-new-tokens`` tokens (``min_new_tokens`` is set to the same number on
the model's generation config), so tokens/s compare like with like. Printed as a markdown table.

    python benchmarks/engine.py                       # tiny random Qwen3-VL, CPU
    python benchmarks/engine.py --images              # each request carries a 1024x768 photo
    python benchmarks/engine.py --model PATH          # any checkpoint TransformersEngine loads
    python benchmarks/engine.py --real-qwen3-vl-4b-config   # random weights, real Qwen3-VL-4B shapes (GPU)
"""

from __future__ import annotations

import argparse
import io
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

from workers.models.chat.base import ChatTurn, GenerationRequest
from workers.models.chat.transformers import TransformersEngine

# Known HBM bandwidths (bytes/s), for when the driver doesn't say.
_BANDWIDTH = {"H200": 4.8e12, "H100 PCIe": 2.0e12, "H100 NVL": 3.9e12, "H100": 3.35e12, "A100": 2.0e12,
              "L40S": 0.864e12, "L4": 0.3e12, "A10": 0.6e12}

QUESTIONS = [
    "Hello! How are you today? Please describe this picture.",
    "What is the weather like in Singapore?",
    "Selamat pagi! Apa kabar? Tolong jelaskan gambar ini.",
    "Bagaimana cuaca di Jakarta hari ini? Saya ingin memesan nasi goreng dan es teh manis.",
    "สวัสดีครับ คุณสบายดีไหม ช่วยอธิบายรูปภาพนี้หน่อยได้ไหม",
    "Xin chào! Bạn có khỏe không? Hãy mô tả bức ảnh này giúp tôi.",
    "Tell me a short story about a cat and a river.",
    "Can you translate this sentence into Indonesian, Malay, Thai and Vietnamese for me, please?",
    "Di mana stesen bas yang paling dekat? Saya mahu pergi ke Kuala Lumpur esok pagi dengan keluarga.",
    "Magandang umaga! Kumusta ka? Pakilarawan ang larawang ito.",
    "Thời tiết ở Hà Nội hôm nay thế nào? Tôi muốn ăn phở bò và uống cà phê sữa đá.",
    "你好！请描述一下这张图片。",
]


def build_requests(count: int, max_new_tokens: int, images: bool) -> list[GenerationRequest]:
    """``count`` distinct conversations (different questions and lengths, like real chats)."""
    photos = [photo(i) for i in range(count)] if images else []
    requests = []
    for i in range(count):
        question = QUESTIONS[i % len(QUESTIONS)] + (f" (conversation {i})" if i >= len(QUESTIONS) else "")
        turn = ChatTurn("user", question, (photos[i],) if images else ())
        requests.append(GenerationRequest("You are a helpful assistant for Southeast Asia.", (turn,),
                                          max_new_tokens))
    return requests


def photo(seed: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1024, 768), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    draw = ImageDraw.Draw(img)
    for k in range(12):
        x, y = (seed * 71 + k * 97) % 900, (seed * 43 + k * 61) % 650
        draw.rectangle((x, y, x + 120, y + 110), fill=((k * 40) % 256, (seed * 13 + k * 29) % 256, 200))
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ checkpoints


def build_real_qwen3_vl_4b(path: Path, device: str, layers: int | None = None) -> Path:
    """Random weights in the real Qwen3-VL-4B shapes, with the real image processor (16 px patches, 2x2 merge).

    The tokenizer is the tiny offline one (its ids are a subset of the real 151936-token vocabulary, which the
    embeddings keep), so prompts are a little shorter in tokens than the real tokenizer makes them.
    ``layers`` shrinks the text and vision depth (for a quick run of this path on a CPU).
    """
    import torch
    from transformers import AutoProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from tests.helpers.checkpoints import build_tiny_qwen3_vl

    build_tiny_qwen3_vl(path)  # tokenizer, chat template, processor and generation config files
    processor = AutoProcessor.from_pretrained(path)
    real_size = {"shortest_edge": 65536, "longest_edge": 16777216}  # Qwen3-VL's preprocessor_config.json
    for sub in (processor.image_processor, processor.video_processor):
        sub.patch_size, sub.merge_size, sub.temporal_patch_size = 16, 2, 2
        sub.size = dict(real_size)
    processor.save_pretrained(path)
    tok = processor.tokenizer.convert_tokens_to_ids
    text_layers = layers or 36
    vision_depth = min(layers, 24) if layers else 24
    deepstack = [5, 11, 17] if not layers else [i for i in (5, 11, 17) if i < vision_depth][:3] or [0]
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 2560,
            "intermediate_size": 9728,
            "num_hidden_layers": text_layers,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 262144,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0,
                                "mrope_section": [24, 20, 20], "mrope_interleaved": True},
            "tie_word_embeddings": True,
            "bos_token_id": tok("<|endoftext|>"),
            "eos_token_id": tok("<|im_end|>"),
            "pad_token_id": tok("<|endoftext|>"),
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 2560,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": deepstack,
            "hidden_act": "gelu_pytorch_tanh",
        },
        image_token_id=tok("<|image_pad|>"),
        video_token_id=tok("<|video_pad|>"),
        vision_start_token_id=tok("<|vision_start|>"),
        vision_end_token_id=tok("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    dtype = torch.bfloat16
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = Qwen3VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(path)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return path


def bandwidth_bytes_per_s(device_name: str, props) -> tuple[float | None, str]:
    clock = getattr(props, "memory_clock_rate", None)  # kHz
    bus = getattr(props, "memory_bus_width", None)  # bits
    if clock and bus:
        return 2 * clock * 1e3 * bus / 8, "from the memory clock and bus width"
    for name, value in _BANDWIDTH.items():
        if name in device_name:
            return value, f"{device_name} data sheet"
    return None, "unknown"


# ----------------------------------------------------------------------------------------- measurement


def one_at_a_time(engine: TransformersEngine, requests: list[GenerationRequest]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = 0
    for request in requests:
        [result] = engine.generate_batch([request])
        if result.error:
            raise SystemExit(f"generation failed: {result.error}")
        tokens += result.completion_tokens
    return time.perf_counter() - started, tokens


def batched(engine: TransformersEngine, requests: list[GenerationRequest]) -> tuple[float, int, list[int]]:
    batcher = engine.batcher
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests) + 1)

    def conversation(i: int) -> None:
        barrier.wait()
        results[i] = engine.generate(requests[i])

    threads = [threading.Thread(target=conversation, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    first_batch = batcher.batches
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    for result in results:
        if result.error:
            raise SystemExit(f"generation failed: {result.error}")
    new = batcher.batches - first_batch
    return (seconds, sum(r.completion_tokens for r in results),
            list(batcher.batch_sizes)[-new:] if new else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: a tiny random Qwen3-VL built here)")
    parser.add_argument("--images", action="store_true", help="attach a 1024x768 photo to every request")
    parser.add_argument("--real-qwen3-vl-4b-config", action="store_true",
                        help="random weights with the real Qwen3-VL-4B configuration, bf16 on CUDA")
    parser.add_argument("--real-layers", type=int, default=None, help=argparse.SUPPRESS)  # smoke runs only
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16,
                        help="the batcher's max_batch (the worker's ENGINE_MAX_BATCH_SIZE)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the batcher's max_wait")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is shown")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    workdir = tempfile.TemporaryDirectory(prefix="engine-bench-")
    if args.model:
        model_path, label = Path(args.model), args.model
    elif args.real_qwen3_vl_4b_config:
        if not device.startswith("cuda"):
            print("note: --real-qwen3-vl-4b-config is meant for a GPU; running on the CPU", file=sys.stderr)
        started = time.perf_counter()
        model_path = build_real_qwen3_vl_4b(Path(workdir.name) / "qwen3-vl-4b", device, args.real_layers)
        label = "random Qwen3-VL-4B configuration" + (f" ({args.real_layers} layers)" if args.real_layers else "")
        print(f"built {label} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    else:
        from tests.helpers.checkpoints import build_tiny_qwen3_vl

        model_path, label = build_tiny_qwen3_vl(Path(workdir.name) / "tiny"), "tiny random Qwen3-VL"

    dtype = args.dtype
    if args.real_qwen3_vl_4b_config and dtype == "auto":
        dtype = "bfloat16"
    engine = TransformersEngine(str(model_path), device=device, dtype=dtype, max_batch=args.max_batch,
                                max_wait=args.max_wait_ms / 1000)
    engine.load()
    # every request generates exactly max_new_tokens tokens
    engine.model.generation_config.min_new_tokens = args.max_new_tokens
    parameters = sum(p.numel() for p in engine.model.parameters())

    most = max(args.concurrency)
    requests = build_requests(most, args.max_new_tokens, args.images)

    # warm-up: first calls pay for lazy initialisation (kernels, allocator, caches)
    engine.generate_batch(requests[:1])
    engine.generate_batch(requests[: min(4, most)])
    batched(engine, requests[: min(4, most)])

    rows = []
    for concurrency in args.concurrency:
        subset = requests[:concurrency]
        alone_runs, batch_runs, sizes = [], [], []
        for _ in range(args.repeats):
            seconds, tokens = one_at_a_time(engine, subset)
            alone_runs.append((seconds, tokens))
            seconds, tokens, sizes = batched(engine, subset)
            batch_runs.append((seconds, tokens))
        alone_s = statistics.median(s for s, _ in alone_runs)
        batch_s = statistics.median(s for s, _ in batch_runs)
        tokens = alone_runs[0][1]
        assert tokens == batch_runs[0][1] == concurrency * args.max_new_tokens, (tokens, batch_runs[0][1])
        rows.append((concurrency, tokens, alone_s, batch_s, sizes))
        print(f"{concurrency:>3} concurrent: one at a time {alone_s:.2f}s, batched {batch_s:.2f}s {sizes}",
              file=sys.stderr)

    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\n**{label}** ({parameters / 1e6:,.1f}M parameters, {str(engine.dtype).replace('torch.', '')}) "
          f"on {where}; {args.max_new_tokens} new tokens per reply"
          f"{', one 1024x768 photo per request' if args.images else ''}; "
          f"batcher max_batch {args.max_batch}, max_wait {args.max_wait_ms:g} ms; median of {args.repeats}.\n")
    print("| concurrent | one at a time tok/s | batched tok/s | ratio | one at a time replies/s "
          "| batched replies/s | batches |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for concurrency, tokens, alone_s, batch_s, sizes in rows:
        print(f"| {concurrency} | {tokens / alone_s:,.1f} | {tokens / batch_s:,.1f} | "
              f"{alone_s / batch_s:.2f}x | {concurrency / alone_s:,.2f} | {concurrency / batch_s:,.2f} | "
              f"{'+'.join(map(str, sizes))} |")

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        bandwidth, source = bandwidth_bytes_per_s(torch.cuda.get_device_name(), props)
        if bandwidth:
            bytes_per_param = engine.model.dtype.itemsize
            limit = bandwidth / (bytes_per_param * parameters)
            single = next((r for r in rows if r[0] == 1), None)
            print(f"\nMemory-bandwidth limit for batch 1: {bandwidth / 1e12:.2f} TB/s ({source}) / "
                  f"({bytes_per_param} bytes x {parameters / 1e9:.2f}B parameters) = {limit:,.0f} tokens/s"
                  + (f"; one at a time reached {single[1] / single[2]:,.1f} tokens/s "
                     f"({100 * single[1] / single[2] / limit:.0f}% of it)" if single else ""))
    workdir.cleanup()


if __name__ == "__main__":
    main()
