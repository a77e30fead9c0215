"""Peak memory of a real `sealion-bot api` process under 64 MiB unsigned webhook bodies.

    python benchmarks/body_limit.py [--mib 64] [--repeat 4]

Starts the API (WhatsApp enabled, no Redis needed), posts `--repeat` bodies of `--mib` MiB to
/webhooks/whatsapp, first with a declared Content-Length and then chunked, and prints the answer
and how much the process's peak resident memory (VmHWM) grew. Before the body limits the
declared body was read whole before the signature check (peak +128 MiB for one 64 MiB body).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bot.test_limits import MIB, raw_post  # noqa: E402
from tests.helpers.api_process import ApiProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    api = ApiProcess({
        "ENVIRONMENT": "test", "REDIS_URL": "redis://127.0.0.1:9/0", "DATA_DIR": str(home),
        "DATABASE_URL": f"sqlite:///{home / 'log.db'}", "WHATSAPP_ACCESS_TOKEN": "token",
        "WHATSAPP_APP_SECRET": "app-secret", "WHATSAPP_PHONE_NUMBER_ID": "1",
    }, home / "api.log").start()
    try:
        for _ in range(3):
            httpx.post(f"{api.base_url}/webhooks/whatsapp", content=b"{}")
        start = api.peak_rss_kib()
        print(f"peak RSS after start: {start / 1024:.1f} MiB")
        print("| body | framing | answers | peak RSS growth |")
        print("| --- | --- | --- | ---: |")
        for chunked in (False, True):
            before = api.peak_rss_kib()
            answers = {raw_post(api.port, "/webhooks/whatsapp", args.mib * MIB,
                                chunked=chunked)[:12].decode(errors="replace")
                       for _ in range(args.repeat)}
            grown = (api.peak_rss_kib() - before) / 1024
            print(f"| {args.repeat} x {args.mib} MiB | {'chunked' if chunked else 'Content-Length'}"
                  f" | {', '.join(sorted(answers))} | {grown:.1f} MiB |")
    finally:
        api.stop()


if __name__ == "__main__":
    main()
