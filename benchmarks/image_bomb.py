"""What one hostile image costs a worker: peak memory and time, before and after the pixel limit.

    python benchmarks/image_bomb.py

Each case runs in a fresh interpreter and prints how much its peak resident memory (ru_maxrss)
grew and how long it took:

* ``pillow``: the bomb (tests/data/images/bomb.png, 150 megapixels in 450 KB) opened as the
  worker did before: Pillow only warns below twice its limit, so it is decoded and downscaled;
* ``prepare_image``: the same bytes through `workers.images.prepare_image` (refused from the
  header).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "pillow": """
import io, warnings
from PIL import Image, ImageOps
warnings.simplefilter("ignore")
Image.MAX_IMAGE_PIXELS = 80_000_000
with Image.open(io.BytesIO(data)) as opened:
    image = ImageOps.exif_transpose(opened)
    image.load()
image = image.resize((1024, 1024))
outcome = "decoded"
""",
    "prepare_image": """
from workers.images import ImageUnreadable, prepare_image
try:
    prepare_image(data, 1024 * 1024)
    outcome = "decoded"
except ImageUnreadable as exc:
    outcome = f"refused ({type(exc).__name__})"
""",
}

HARNESS = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
data = open({path!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
{case}
seconds = time.perf_counter() - started
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"outcome": outcome, "grew_mib": grew / 1024, "seconds": seconds}}))
"""


def main() -> None:
    bomb = ROOT / "tests" / "data" / "images" / "bomb.png"
    print(f"bomb: {bomb.stat().st_size / 1024:.0f} KB, 12248 x 12248 = 150 megapixels")
    for name, case in CASES.items():
        script = HARNESS.format(root=str(ROOT), path=str(bomb), case=case)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"{name:>14}: {result['outcome']:<28} peak RSS +{result['grew_mib']:7.1f} MiB"
              f"  {result['seconds']:6.2f} s")


if __name__ == "__main__":
    main()
