#!/usr/bin/python3
"""Live benchmark (issue 4): from close() of a new 12 MP JPEG to the WebSocket `added` message,
and to its thumbnail being ready (the `changed` message that carries its thumbhash).

    live.py --bin SPIS --photos DIR [--count 100] [--vips]

Starts spis on 127.0.0.1:0 over an empty temp folder, connects to /api/events, then writes
COUNT photos one after another (cycling through the JPEGs in DIR), each with open/write/close,
waiting for both messages before the next. Prints median and p99 of both latencies, the targets
(event < 50 ms, thumbnail < 300 ms) and, with --vips, the ratio of the thumbnail latency to
vipsthumbnail's wall time for the same photos measured in the same run. A benchmark, not a test:
it exits 0 when a target is missed and says so. Every wait is bounded; only 127.0.0.1 is used.

Needs Debian's python3-websockets (the asyncio client of websockets 10).
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import websockets

TARGET_EVENT_MS = 50
TARGET_THUMB_MS = 300
WAIT_S = 30


def p99(values):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def start(binary, media, state):
    proc = subprocess.Popen(
        [binary, "--media", media, "--state-dir", state, "--listen", "127.0.0.1:0", "--log", "warn", "--no-auth",
         "--thumb-workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    prefix = "spis listening on http://"
    if not line.startswith(prefix):
        proc.kill()
        sys.exit(f"live.py: spis did not start: {line!r}")
    return proc, line[len(prefix):]


async def wait_for(ws, predicate, deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
        if predicate(msg):
            return msg


async def measure(addr, media, photos, count):
    events, thumbs = [], []
    async with websockets.connect(f"ws://{addr}/api/events", max_size=1 << 20) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=WAIT_S))
        assert hello["type"] == "hello", hello
        # Wait until the (empty) first index is done, so every file is announced.
        deadline = time.monotonic() + WAIT_S
        while not hello.get("ready") and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=WAIT_S))
            if msg["type"] == "indexing" and msg["done"]:
                break
        for i in range(count):
            with open(photos[i % len(photos)], "rb") as f:
                data = f.read()
            name = f"cam_{i:04d}.jpg"
            with open(os.path.join(media, name), "wb") as f:
                f.write(data)
            closed = time.monotonic()
            deadline = closed + WAIT_S
            added = await wait_for(ws, lambda m: m["type"] == "added" and m["item"]["name"] == name, deadline)
            if added is None:
                sys.exit(f"live.py: no `added` for {name} within {WAIT_S} s")
            events.append((time.monotonic() - closed) * 1000)
            item_id = added["item"]["id"]
            ready = await wait_for(
                ws, lambda m: m["type"] == "changed" and m["item"]["id"] == item_id and m["item"]["thumbhash"],
                deadline)
            if ready is None:
                sys.exit(f"live.py: no thumbnail for {name} within {WAIT_S} s")
            thumbs.append((time.monotonic() - closed) * 1000)
    return events, thumbs


def vips_ms(photos, out):
    """Wall milliseconds per photo for vipsthumbnail -s 400 (one process per photo, as a
    watcher script would run it)."""
    times = []
    for p in photos:
        t = time.monotonic()
        subprocess.run(["vipsthumbnail", "-s", "400", "-o", os.path.join(out, "%s_400.jpg[Q=80]"), p],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--photos", required=True, help="folder of 12 MP JPEGs")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--vips", action="store_true")
    args = ap.parse_args()
    photos = sorted(os.path.join(args.photos, p) for p in os.listdir(args.photos) if p.lower().endswith(".jpg"))
    if not photos:
        sys.exit("live.py: no JPEGs in --photos")
    run = tempfile.mkdtemp(prefix="spis-bench-live.")
    media, state = os.path.join(run, "media"), os.path.join(run, "state")
    os.makedirs(media)
    proc, addr = start(args.bin, media, state)
    try:
        events, thumbs = asyncio.run(measure(addr, media, photos, min(max(args.count, 1), 1000)))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    vips = vips_ms(photos, run) if args.vips else None
    shutil.rmtree(run, ignore_errors=True)

    def verdict(value, target):
        return "ok" if value < target else "MISSED"

    n = len(events)
    print(f"live ({n} new 12 MP JPEGs, one at a time)   median      p99   target")
    print(f"  close -> WebSocket `added`          {statistics.median(events):7.1f} ms {p99(events):7.1f} ms"
          f"   < {TARGET_EVENT_MS} ms: {verdict(p99(events), TARGET_EVENT_MS)}")
    print(f"  close -> thumbnail ready            {statistics.median(thumbs):7.1f} ms {p99(thumbs):7.1f} ms"
          f"   < {TARGET_THUMB_MS} ms: {verdict(p99(thumbs), TARGET_THUMB_MS)}")
    if vips is not None:
        print(f"  vipsthumbnail -s 400, same photos   {vips:7.1f} ms (median wall time per photo)"
              f"   thumbnail-ready/vips = {statistics.median(thumbs) / vips:.2f}x")
    print("  (upstream spis: about 5.4 s, a fixed 5 s debounce)")


if __name__ == "__main__":
    main()
