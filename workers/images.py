"""Image preparation before storage and the model: decode, orient, downscale, re-encode."""

from __future__ import annotations

import io
import logging
import math

from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

Image.MAX_IMAGE_PIXELS = 80_000_000  # refuse decompression bombs, allow 50 MP phone photos


class NotAnImage(ValueError):
    """The bytes are not an image Pillow can read."""


def downscale_to_jpeg(data: bytes, max_pixels: int, quality: int = 85) -> bytes:
    """JPEG bytes of the image, at most `max_pixels` (width * height), aspect ratio kept."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise NotAnImage(str(exc)) from exc
    if image.mode != "RGB":
        background = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    pixels = image.width * image.height
    if pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def make_thumbnail(image: bytes, max_side: int = 320, quality: int = 70) -> bytes:
    """A small JPEG of `image` for the conversation log (a few KB); b"" when it cannot be
    read."""
    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.thumbnail((max_side, max_side))
            if picture.mode != "RGB":
                picture = picture.convert("RGB")
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=quality, optimize=True)
            return out.getvalue()
    except Exception as exc:  # noqa: BLE001 - any unreadable image: no thumbnail
        log.info("conversation log: no thumbnail (%s)", type(exc).__name__)
        return b""
