#!/usr/bin/env python3
"""Writes the tiny seed images of the image_decode fuzz corpus (standard library only)."""
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
