"""The report in a real browser: headless Chromium opens it without console errors and draws it."""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=800,600",
    "--virtual-time-budget=5000",
]


def screenshot(page: Path, tmp_path: Path) -> tuple[bytes, list[str]]:
    """PNG of the top of ``page`` and the console lines Chromium logged while showing it."""
    png = tmp_path / "shot.png"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return png.read_bytes(), console


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered pixel bytes of an 8-bit RGB(A) PNG."""
    chunks, pos = {}, 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8 : pos + 8 + length])
        pos += length + 12
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6), "expected an 8-bit RGB or RGBA screenshot"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks[b"IDAT"])), width * bpp
    out, previous = bytearray(), bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        out += row
        previous = row
    return width, height, bpp, bytes(out)


def test_report_opens_without_console_errors_and_draws_its_top(tiny_run, tmp_path):
    shot, console = screenshot(tiny_run / "report.html", tmp_path)
    assert console == []
    width, height, bpp, pixels = png_pixels(shot)
    colours = {pixels[i : i + 3] for i in range(0, len(pixels), bpp)}
    not_white = sum(pixels[i : i + 3] != b"\xff\xff\xff" for i in range(0, len(pixels), bpp))
    assert (width, height) == (800, 600)
    assert len(colours) > 50  # text, verdict badges and table lines, not a blank page
    assert not_white > 0.05 * width * height


def test_console_errors_are_caught(tmp_path):
    """The check above can fail: a page whose script throws is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><p>x</p><script>throw new Error('boom')</script></body></html>")
    _, console = screenshot(page, tmp_path)
    assert any("Uncaught Error: boom" in line for line in console)
