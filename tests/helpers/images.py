"""Small synthetic test images, encoded as the bytes a chat user would send."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def image_bytes(width: int, height: int, color=(200, 40, 40), fmt: str = "PNG") -> bytes:
    """A ``width`` x ``height`` picture in ``color`` with a blue square and a yellow diagonal
    (so it is no flat colour), encoded as ``fmt`` ("PNG", "JPEG", ...)."""
    img = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill=(20, 20, 220))
    draw.line((0, 0, width, height), fill=(255, 255, 0), width=max(1, width // 50))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
