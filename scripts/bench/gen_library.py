#!/usr/bin/env python3
"""Generate a synthetic photo library for `make bench`.

Writes COUNT small but valid JPEGs (64x48, baseline) into OUT_DIR as

    YYYY/YYYY-MM-DD Event N/IMG_NNNN.jpg

Every file carries an EXIF APP1 segment (IFD0 with Make, Model and an Exif IFD pointer; the
Exif IFD with ExifVersion, DateTimeOriginal and SubSecTimeOriginal), with dates spread over 2006-2025 and
about 40 photos per event folder, so 100k photos land in about 2,500 folders. The pixels are the
same in every file: the benchmark measures indexing, not decoding.

The same --count and --seed always give the same names, dates and bytes. The last thing written
is OUT_DIR/.spis-bench.json (hidden, so spis skips it), which says what was generated; a library
without it is incomplete. Only the Python standard library is needed.
"""

import argparse
import base64
import datetime
import json
import os
import random
import struct
import sys
import time

FIRST_YEAR = 2006
LAST_YEAR = 2025
PHOTOS_PER_EVENT = 40
# Keeps IMG_NNNN names unique within a folder: the camera counter wraps after 9999.
MAX_EVENT_SIZE = 9999
GENERATOR_VERSION = 1
MANIFEST = ".spis-bench.json"

# A 64x48 baseline JPEG (603 bytes, made once with Pillow), starting with a JFIF APP0 segment.
BASE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkz"
    "ODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAwAEADASIA"
    "AhEBAxEB/8QAGAABAQEBAQAAAAAAAAAAAAAAAwUEBgD/xAAqEAACAgAFAQYHAAAAAAAAAAABAgAD"
    "BAURITEiEiNBUXHBEzJCYZHh8f/EABgBAAMBAQAAAAAAAAAAAAAAAAMEBQIG/8QAHhEAAwEAAwAD"
    "AQAAAAAAAAAAAAEDAgQRMQUUISL/2gAMAwEAAhEDEQA/AOOWuItcda4q1ys9gp0AWuKtc0V0lmCq"
    "pJJ0AA5nR4DIaUqDYsF7CN0B0C/jxiXJ5k4LvZQlts5la4i1zp8RkeGevuAanHG5IPrrIzYdqrCj"
    "qVZdiDAx5s7r+R6dDMtcVa461xVrhHsfnQkrXFWuOtcVa5p7OCnQ15DhgcS1xA7tdvU/rWX5Jych"
    "LLEP1AEb+X9lac38g27vsu8ZpzTR6Ts1pDfDtA3+U+3vKMy47qVU++sFxG1ZdB++v0lrXFWuMtcV"
    "a5aexmdCStcVa461xVrm3s4KdAalZGDKdCODKlV6uvVoreMzLXFWuJ3nmvvpV43K1PwZrFA2Op8h"
    "AKl27TcxVrirXBTnmXno99l7AWuKtcda4q1zT2NTof/Z"
)

CAMERAS = [
    ("Canon", "Canon EOS 5D Mark III"),
    ("NIKON CORPORATION", "NIKON D750"),
    ("Apple", "iPhone 12"),
    ("SONY", "ILCE-7M3"),
    ("FUJIFILM", "X-T3"),
    ("Google", "Pixel 7"),
]

# TIFF tags and field types used below.
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_EXIF_IFD = 0x8769
TAG_EXIF_VERSION = 0x9000
TAG_DATETIME_ORIGINAL = 0x9003
TAG_SUBSEC_TIME_ORIGINAL = 0x9291
TYPE_ASCII = 2
TYPE_LONG = 4
TYPE_UNDEFINED = 7


def jpeg_body(base: bytes) -> bytes:
    """The base JPEG after SOI, without its JFIF APP0 segment (Exif files start with APP1)."""
    assert base[:2] == b"\xff\xd8" and base[2:4] == b"\xff\xe0", "base JPEG must start SOI, APP0"
    (app0_len,) = struct.unpack(">H", base[4:6])
    return base[4 + app0_len :]


def _ifd(entries: list, ifd_offset: int, data_offset: int) -> tuple:
    """Packs one little-endian IFD at `ifd_offset` whose out-of-line values start at `data_offset`.

    `entries` are (tag, type, count, value) with value either an int (LONG) or bytes (ASCII with
    its NUL, or UNDEFINED). Returns (ifd bytes, data bytes).
    """
    ifd = bytearray(struct.pack("<H", len(entries)))
    data = bytearray()
    for tag, typ, count, value in sorted(entries):
        if isinstance(value, int):
            field = struct.pack("<I", value)
        elif len(value) <= 4:
            field = value.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_offset + len(data))
            data += value
            if len(data) % 2:  # TIFF wants values on word boundaries
                data += b"\0"
        ifd += struct.pack("<HHI", tag, typ, count) + field
    ifd += struct.pack("<I", 0)  # no next IFD
    assert ifd_offset + len(ifd) <= data_offset
    return bytes(ifd), bytes(data)


def _ascii(text: str) -> tuple:
    raw = text.encode("ascii") + b"\0"
    return TYPE_ASCII, len(raw), raw


def exif_app1(make: str, model: str, taken: datetime.datetime, subsec: str) -> bytes:
    """An APP1 segment holding a TIFF structure: IFD0 -> Exif IFD with the date taken."""
    ifd0_entries = [
        (TAG_MAKE, *_ascii(make)),
        (TAG_MODEL, *_ascii(model)),
        (TAG_EXIF_IFD, TYPE_LONG, 1, 0),  # patched below, once IFD0's size is known
    ]
    exif_entries = [
        (TAG_EXIF_VERSION, TYPE_UNDEFINED, 4, b"0232"),
        (TAG_DATETIME_ORIGINAL, *_ascii(taken.strftime("%Y:%m:%d %H:%M:%S"))),
        (TAG_SUBSEC_TIME_ORIGINAL, *_ascii(subsec)),
    ]
    ifd0_offset = 8
    ifd0_size = 2 + 12 * len(ifd0_entries) + 4
    exif_offset = ifd0_offset + ifd0_size
    exif_size = 2 + 12 * len(exif_entries) + 4
    data_offset = exif_offset + exif_size

    ifd0_entries[2] = (TAG_EXIF_IFD, TYPE_LONG, 1, exif_offset)
    exif_ifd, exif_data = _ifd(exif_entries, exif_offset, data_offset)
    ifd0, ifd0_data = _ifd(ifd0_entries, ifd0_offset, data_offset + len(exif_data))

    tiff = b"II" + struct.pack("<HI", 42, ifd0_offset) + ifd0 + exif_ifd + exif_data + ifd0_data
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload


def plan_events(rng: random.Random, count: int, folders: int) -> list:
    """Splits `count` photos into `folders` events: a list of (start datetime, size, camera)."""
    weights = [min(rng.lognormvariate(0.0, 0.8), 8.0) for _ in range(folders)]
    total = sum(weights)
    sizes = [int(w / total * count) for w in weights]
    for i in range(count - sum(sizes)):  # hand out the rounding remainder
        sizes[i % folders] += 1
    if max(sizes) > MAX_EVENT_SIZE:
        raise ValueError(
            f"an event would hold {max(sizes)} photos (names repeat past "
            f"{MAX_EVENT_SIZE}); use more --folders"
        )
    events = []
    span_days = (datetime.date(LAST_YEAR, 12, 31) - datetime.date(FIRST_YEAR, 1, 1)).days
    for i, size in enumerate(sizes):
        # Spread events evenly over the years, each at a random day of its slice of time.
        day = (span_days * i) // folders + rng.randrange(max(1, span_days // folders))
        start = datetime.datetime(FIRST_YEAR, 1, 1) + datetime.timedelta(
            days=day, hours=rng.randint(7, 17), minutes=rng.randrange(60), seconds=rng.randrange(60)
        )
        events.append((start, size, rng.choice(CAMERAS)))
    rng.shuffle(events)  # event numbers do not follow dates, as in a real library
    return events


def generate(out_dir: str, count: int, seed: int, folders: int) -> dict:
    rng = random.Random(seed)
    body = jpeg_body(BASE_JPEG)
    events = plan_events(rng, count, folders)
    counter = rng.randint(1, 9999)  # the camera's file counter
    years: dict = {}
    written = 0
    dirs = 0
    for number, (start, size, (make, model)) in enumerate(events, start=1):
        if size == 0:
            continue
        folder = os.path.join(out_dir, f"{start:%Y}", f"{start:%Y-%m-%d} Event {number}")
        os.makedirs(folder)
        dirs += 1
        taken = start
        for _ in range(size):
            app1 = exif_app1(make, model, taken, f"{rng.randrange(1000):03d}")
            path = os.path.join(folder, f"IMG_{counter:04d}.jpg")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, b"\xff\xd8" + app1 + body)
            finally:
                os.close(fd)
            years[taken.year] = years.get(taken.year, 0) + 1
            written += 1
            counter = counter % 9999 + 1
            taken += datetime.timedelta(seconds=rng.randint(1, 90))
    return {
        "generator": GENERATOR_VERSION,
        "count": written,
        "seed": seed,
        "folders": dirs,
        "years": {str(y): n for y, n in sorted(years.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to create (must be absent or empty)")
    parser.add_argument("--count", type=int, default=100_000, help="number of photos (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--folders", type=int, default=0, help=f"event folders (default: one per {PHOTOS_PER_EVENT} photos)"
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    folders = args.folders or max(1, args.count // PHOTOS_PER_EVENT)

    if os.path.exists(args.out_dir) and os.listdir(args.out_dir):
        print(f"gen_library: {args.out_dir} is not empty; remove it first", file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)

    started = time.monotonic()
    try:
        manifest = generate(args.out_dir, args.count, args.seed, folders)
    except ValueError as e:
        print(f"gen_library: {e}", file=sys.stderr)
        return 2
    with open(os.path.join(args.out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(
        f"gen_library: {manifest['count']} photos in {manifest['folders']} folders "
        f"in {time.monotonic() - started:.1f} s -> {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
