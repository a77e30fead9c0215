"""Every image from outside is opened here: decoded once, oriented, downscaled, re-encoded.

`prepare_image(data, max_pixels)` is the one call a turn makes for a downloaded photo: it
decodes the bytes once and returns both the JPEG the model sees (at most `max_pixels`) and the
thumbnail the conversation log keeps. Whatever else opens an image (the engines, the log's
thumbnails of older plans) goes through `open_image`, so the pixel limit holds on every path
(`load_image` is what a model sees of a photo, in process or sent to a server):

* Only `FORMATS` are opened (`Image.open(formats=...)`): JPEG, PNG, WebP, GIF, and AVIF where
  the installed Pillow reads it natively. The bytes decide, not the declared MIME type, and
  nothing else is even identified: an EPS "photo" never reaches Ghostscript, a TIFF or a PSD
  never reaches their decoders. Anything else is `ImageUnreadable`.
* `MAX_DECODE_PIXELS` is checked here, from the header, before any pixel is decoded, whatever
  `Image.MAX_IMAGE_PIXELS` says at that moment (another library may change it, and Pillow only
  warns between the limit and twice the limit). `Image.MAX_IMAGE_PIXELS` is set from it when
  this module is imported, and `DecompressionBombWarning` is made an error, as a second fence.
* JPEGs much larger than needed are decoded at a reduced scale (libjpeg's DCT scaling).

Exception tree (what callers catch):

    ValueError
     └── ImageUnreadable        any failure to read the image: not an image, truncated, broken
          │                     EXIF (SyntaxError), an encoder error (OSError), ...
          └── ImageTooLarge     over `MAX_DECODE_PIXELS` (a decompression bomb)

`workers.decoding` runs `prepare_image` in a process under a memory and a time bound, the second
fence, for every photo from outside.

`make_thumbnail` makes the log's thumbnail alone (of a photo already in the history, for a plan
made before thumbnails were made at download time).
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, features

log = logging.getLogger(__name__)

#: The most pixels (width * height) an image may declare: 80 MP covers a 50 MP phone photo with
#: room to spare; a 150 MP PNG of a few hundred KB (about 1.5 GiB once decoded) is refused.
MAX_DECODE_PIXELS = 80_000_000
#: Longest side of the conversation log's thumbnails.
THUMBNAIL_SIDE = 320



def _natively(plugin: str) -> bool:
    try:
        return bool(features.check_module(plugin))
    except ValueError:  # a Pillow older than the plugin
        return False


#: The formats a photo may be in (Pillow's plugin ids). HEIC needs a plugin Pillow does not
#: ship (pillow-heif), so it is not among them; platforms send JPEG anyway.
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF") + (("AVIF",) if _natively("avif")
                                                                else ())

Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageUnreadable(ValueError):
    """The bytes are not an image we can read (the person is told so)."""


class ImageTooLarge(ImageUnreadable):
    """The image declares more than `MAX_DECODE_PIXELS` pixels."""


@dataclass(frozen=True)
class PreparedImage:
    #: What the model sees: a JPEG of at most `max_pixels` pixels, oriented, on white.
    model_jpeg: bytes
    #: What the conversation log keeps: a JPEG of at most THUMBNAIL_SIDE on its longest side.
    thumbnail: bytes


def open_image(data: bytes, *, target_pixels: int | None = None) -> Image.Image:
    """The decoded first frame of `data`, EXIF orientation applied.

    With `target_pixels`, a JPEG is decoded directly at a reduced scale no smaller than that.
    Raises `ImageTooLarge` before decoding a bomb, `ImageUnreadable` for anything else
    (including every format outside `FORMATS`, identified or not).
    """
    try:
        opened = Image.open(io.BytesIO(bytes(data)), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)) from exc
    except Exception as exc:
        raise ImageUnreadable(f"{type(exc).__name__}: not an image") from exc
    try:
        width, height = opened.size
        if width <= 0 or height <= 0:
            raise ImageUnreadable("the image has no pixels")
        if width * height > MAX_DECODE_PIXELS:
            raise ImageTooLarge(f"{width}x{height} is over {MAX_DECODE_PIXELS} pixels")
        if target_pixels and opened.format == "JPEG" and width * height > target_pixels:
            scale = math.sqrt(target_pixels / (width * height))
            opened.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
        opened.load()
        # In place: a copy would hold the pixels twice (320 MB more at 80 MP).
        ImageOps.exif_transpose(opened, in_place=True)
        return opened
    except Exception as exc:  # SyntaxError from broken EXIF, OSError, MemoryError, ...
        opened.close()
        if isinstance(exc, ImageUnreadable):
            raise
        raise ImageUnreadable(f"{type(exc).__name__} while decoding") from exc


def load_image(data: bytes, max_pixels: int | None) -> Image.Image:
    """An RGB image of at most `max_pixels` pixels (aspect kept), as every model sees a photo:
    the chat and guard models in process, and the servers (`workers.models.openai_api.
    image_data_url`). EXIF orientation is applied (phone photos), transparency is flattened
    onto white, and JPEGs much larger than needed are decoded at a reduced scale. Raises
    `ImageUnreadable` (a ValueError) for anything unreadable, `TypeError` for what is not bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"image must be bytes, not {type(data).__name__}")
    img = open_image(bytes(data), target_pixels=max_pixels)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    if max_pixels and img.width * img.height > max_pixels:
        scale = math.sqrt(max_pixels / (img.width * img.height))
        size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return img


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, transparency composed onto white: pasted through its own alpha, so the pixels are
    held at most twice (the image and the result), not four times."""
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image)
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def prepare_image(data: bytes, max_pixels: int, *, quality: int = 85,
                  thumbnail_side: int = THUMBNAIL_SIDE, thumbnail_quality: int = 70
                  ) -> PreparedImage:
    """Decode `data` once; the model's JPEG (at most `max_pixels`) and the log's thumbnail.

    Raises `ImageUnreadable` (or `ImageTooLarge`) for anything that cannot be read or encoded.
    """
    return prepare_picture(open_image(data, target_pixels=max_pixels), max_pixels,
                           quality=quality, thumbnail_side=thumbnail_side,
                           thumbnail_quality=thumbnail_quality)


def prepare_picture(image: Image.Image, max_pixels: int, *, quality: int = 85,
                    thumbnail_side: int = THUMBNAIL_SIDE, thumbnail_quality: int = 70
                    ) -> PreparedImage:
    """`prepare_image` of pixels decoded already (a document's page rendered by pdfium)."""
    try:
        image = _flatten(image)
        pixels = image.width * image.height
        if pixels > max_pixels:
            scale = math.sqrt(max_pixels / pixels)
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        model_jpeg = _jpeg(image, quality)
        thumbnail = image.copy()
        thumbnail.thumbnail((thumbnail_side, thumbnail_side))
        return PreparedImage(model_jpeg, _jpeg(thumbnail, thumbnail_quality))
    except Exception as exc:
        raise ImageUnreadable(f"{type(exc).__name__} while encoding") from exc


def make_thumbnail(image: bytes, max_side: int = THUMBNAIL_SIDE, quality: int = 70) -> bytes:
    """A small JPEG of `image` for the conversation log (a few KB); b"" when it cannot be
    read."""
    try:
        picture = _flatten(open_image(image, target_pixels=max_side * max_side))
        picture.thumbnail((max_side, max_side))
        return _jpeg(picture, quality)
    except Exception as exc:  # any unreadable image: no thumbnail
        log.info("conversation log: no thumbnail (%s)", type(exc).__name__)
        return b""
