#!/usr/bin/env python3
"""Writes the seed images of the image_decode fuzz corpus: tiny PNGs and a BMP from the standard
library, and, with Debian's python3-pil, the JPEG, WebP and TIFF variants that reach the decoders'
deeper paths (progressive and grayscale JPEG, EXIF rotation, a JPEG large enough to be decoded
reduced, lossy and lossless WebP, 16-bit and alpha TIFF, palette and interlaced PNG).
Run:  /usr/bin/python3 make_image_seeds.py"""
import io
import os
import struct
import zlib

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image_decode")
os.makedirs(out, exist_ok=True)


def png(path, width, height, color_type, pixels, bit_depth=8):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + row for row in pixels)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def bmp(path, width, height):
    row = bytes((x * 40) % 256 for x in range(width * 3))
    pad = (4 - len(row) % 4) % 4
    pixels = b"".join(row + b"\x00" * pad for _ in range(height))
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + pixels)


png(os.path.join(out, "rgb.png"), 4, 3, 2, [bytes(range(y, y + 12)) for y in range(3)])
png(os.path.join(out, "rgba.png"), 2, 2, 6, [b"\xff\x00\x00\x80\x00\xff\x00\xff"] * 2)
png(os.path.join(out, "gray.png"), 3, 3, 0, [b"\x10\x80\xf0"] * 3)
png(os.path.join(out, "rgb16.png"), 2, 1, 2, [b"\xff\xff\x00\x00\x80\x80" * 2], bit_depth=16)
bmp(os.path.join(out, "rgb.bmp"), 5, 2)


try:
    from PIL import Image
except ImportError:
    print("python3-pil is missing: only the standard-library seeds were written")
    raise SystemExit(0)


def gradient(mode, width, height):
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 255) // width, (y * 255) // height, ((x + y) * 7) % 256) for y in range(height) for x in range(width)])
    return image.convert(mode)


def save(name, image, size_mod_4=None, **options):
    """size_mod_4: bytes added after the image (decoders ignore them) so its size is 2 or 3 mod 4,
    which makes the fuzz target ask for a reduced decode."""
    buffer = io.BytesIO()
    image.save(buffer, **options)
    data = buffer.getvalue()
    if size_mod_4 is not None:
        data += b"\0" * ((size_mod_4 - len(data)) % 4)
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


save("baseline.jpg", gradient("RGB", 24, 16), format="JPEG", quality=80)
save("progressive.jpg", gradient("RGB", 24, 16), format="JPEG", quality=60, progressive=True)
save("gray.jpg", gradient("L", 16, 16), format="JPEG")
exif = Image.Exif()
exif[0x0112] = 6  # orientation: rotated 90 degrees
save("rotated.jpg", gradient("RGB", 20, 12), format="JPEG", exif=exif.tobytes())
save("reduced.jpg", gradient("RGB", 520, 260), size_mod_4=2, format="JPEG", quality=30)
save("lossy.webp", gradient("RGB", 16, 12), format="WEBP", quality=50)
save("lossless.webp", gradient("RGBA", 12, 8), format="WEBP", lossless=True)
save("rgb.tiff", gradient("RGB", 8, 6), format="TIFF")
save("gray16.tiff", Image.frombytes("I;16", (8, 6), b"".join(struct.pack("<H", (i * 1361) % 65536) for i in range(48))), format="TIFF")
save("rgba.tiff", gradient("RGBA", 6, 6), format="TIFF", compression="tiff_deflate")
save("palette.png", gradient("RGB", 10, 10).convert("P", palette=Image.ADAPTIVE, colors=8), format="PNG", transparency=0)
save("interlaced.png", gradient("RGB", 9, 9), format="PNG", interlace=1)
save("rgba32.bmp", gradient("RGBA", 5, 3), format="BMP")
