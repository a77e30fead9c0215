"""The two hostile images of issue #12, kept as fixtures under tests/data/images/.

* ``poison.webp`` (90 bytes): a 1x1 WebP whose EXIF block is not TIFF data, so Pillow's
  ``ImageOps.exif_transpose`` raises ``SyntaxError`` ("not a TIFF file").
* ``bomb.png`` (about 440 KB): a 12248x12248 RGB PNG, 150 megapixels, all one colour, so it
  compresses about a thousand to one; decoded, it takes about 450 MB, more with the copies a
  resize makes. Pillow only warns about it (it is under twice ``Image.MAX_IMAGE_PIXELS``).

The PNG is written row by row through zlib, never held decoded. Regenerate both with
``python -m tests.helpers.hostile_images``.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "data" / "images"
POISON_WEBP = DATA / "poison.webp"
BOMB_PNG = DATA / "bomb.png"
BOMB_SIDE = 12248  # 150,013,504 pixels


def poison_webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 0, 0)).save(out, "WEBP", quality=10,
                                               exif=b"Exif\x00\x00BROKEN")
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + b"\x10\x80\x30" * side  # filter "none", one dark green row
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    POISON_WEBP.write_bytes(poison_webp())
    BOMB_PNG.write_bytes(bomb_png())
    for path in (POISON_WEBP, BOMB_PNG):
        print(f"{path.relative_to(DATA.parents[1])}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
