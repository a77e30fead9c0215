"""workers/images.py: decode once, the pixel limit on every path, every failure one error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from tests.helpers.hostile_images import BOMB_PNG, BOMB_SIDE, POISON_WEBP, poison_webp
from tests.helpers.images import image_bytes
from workers import images
from workers.images import (
    MAX_DECODE_PIXELS,
    ImageTooLarge,
    ImageUnreadable,
    load_image,
    make_thumbnail,
    prepare_image,
)


def test_the_fixtures_are_what_the_issue_describes():
    poison = POISON_WEBP.read_bytes()
    assert poison == poison_webp() and len(poison) < 128
    bomb = BOMB_PNG.read_bytes()
    assert len(bomb) < 1024 * 1024
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow itself only warns
        with Image.open(io.BytesIO(bomb)) as header_only:
            assert header_only.size == (BOMB_SIDE, BOMB_SIDE)
    assert BOMB_SIDE * BOMB_SIDE > 1.5 * 10**8 > MAX_DECODE_PIXELS


def test_poison_webp_is_unreadable_not_a_crash():
    with pytest.raises(ImageUnreadable) as raised:
        prepare_image(POISON_WEBP.read_bytes(), 1024 * 1024)
    assert isinstance(raised.value.__cause__, SyntaxError)  # the broken EXIF block
    assert make_thumbnail(POISON_WEBP.read_bytes()) == b""


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage", image_bytes(64, 48, fmt="JPEG")[:300],
                                  image_bytes(64, 48)[:-40]],
                         ids=["empty", "garbage", "truncated-jpeg", "truncated-png"])
def test_anything_unreadable_is_one_error(data):
    with pytest.raises(ImageUnreadable):
        prepare_image(data, 1024 * 1024)
    assert issubclass(ImageUnreadable, ValueError)


def test_an_encoder_failure_is_unreadable_too(monkeypatch):
    def failing_save(*args, **kwargs):
        raise OSError("encoder error -2")

    picture = image_bytes(64, 48)
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(ImageUnreadable):
        prepare_image(picture, 1024 * 1024)


def test_the_bomb_is_refused_even_if_pillows_limit_was_lifted(monkeypatch):
    """Another library may set Image.MAX_IMAGE_PIXELS = None: our own check still holds."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    bomb = BOMB_PNG.read_bytes()
    with pytest.raises(ImageTooLarge):
        prepare_image(bomb, 1024 * 1024)
    with pytest.raises(ImageTooLarge):
        load_image(bomb, 1024 * 1024)  # the engine's path
    assert make_thumbnail(bomb) == b""  # the log's path


@pytest.mark.integration
def test_the_bomb_is_refused_before_decoding():
    """In a fresh interpreter (no earlier import setting anything up), refusing the bomb costs
    no memory: the header is read, the pixels never."""
    script = textwrap.dedent(f"""
        import json, resource
        from pathlib import Path
        data = Path({str(BOMB_PNG)!r}).read_bytes()
        from workers.images import ImageTooLarge, prepare_image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            prepare_image(data, 1024 * 1024)
            outcome = "decoded"
        except ImageTooLarge:
            outcome = "refused"
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"outcome": outcome, "grew_kib": after - before}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "refused"
    assert report["grew_kib"] < 50 * 1024, report


def test_decoded_once_for_both_results(monkeypatch):
    opened = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        opened.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(images.Image, "open", counting_open)
    prepared = prepare_image(image_bytes(1600, 1200), 640 * 480)
    assert len(opened) == 1
    with Image.open(io.BytesIO(prepared.model_jpeg)) as model:
        assert model.format == "JPEG" and model.width * model.height <= 640 * 480
        assert abs(model.width / model.height - 4 / 3) < 0.01
    with Image.open(io.BytesIO(prepared.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 320


def test_orientation_and_transparency():
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    Image.new("RGB", (60, 20), "blue").save(rotated, "JPEG", exif=exif)
    with Image.open(io.BytesIO(prepare_image(rotated.getvalue(), 10**6).model_jpeg)) as shown:
        assert shown.size == (20, 60)
    clear = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(clear, "PNG")
    with Image.open(io.BytesIO(prepare_image(clear.getvalue(), 10**6).model_jpeg)) as flat:
        assert min(flat.convert("RGB").getpixel((4, 4))) > 240  # white, not black


def test_big_jpegs_are_decoded_at_a_reduced_scale(monkeypatch):
    big = image_bytes(4000, 3000, fmt="JPEG")
    drafts = []
    real_draft = Image.Image.draft

    def spy(self, mode, size):
        drafts.append(size)
        return real_draft(self, mode, size)

    monkeypatch.setattr(Image.Image, "draft", spy)
    prepared = prepare_image(big, 1024 * 1024)
    assert drafts and drafts[0][0] * drafts[0][1] <= 1024 * 1024
    with Image.open(io.BytesIO(prepared.model_jpeg)) as model:
        assert model.width * model.height <= 1024 * 1024
