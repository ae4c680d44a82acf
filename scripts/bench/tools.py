#!/usr/bin/env python3
"""Small helpers for scripts/bench.sh that are awkward in bash.

    tools.py wait URL --pid PID --start-ns NS [--timeout S]
        Polls URL/api/status every 50 ms until indexing.done, then prints key=value lines:
        wall_ms (since NS, a `date +%s%N` taken just before the server was started), the
        server's own elapsed_ms, items, errors and the metadata counters.
    tools.py sample URL [--count N]
        GETs URL N times in a row and prints first_ms, median_ms, max_ms, status and, for a
        list, items (the length of the first answer's "items").
    tools.py strip DIR
        Removes the user.spis.meta attribute from every file below DIR (so the next index is
        cold again) and prints removed=N.
    tools.py preload DIR
        Reads every file below DIR once, so an index that follows finds them in the page cache
        whether or not the library was just generated; prints files=N.
    tools.py xattr-info FILE
        Prints the size of FILE's user.spis.meta record and whether the filesystem had to give
        it a block of its own (ext4 keeps only small attributes inside the inode).

Every loop is bounded in time or count, and only the URL given is contacted. Standard library only.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request

POLL_INTERVAL_S = 0.05
META_ATTR = "user.spis.meta"


def get(url: str, timeout: float = 5.0) -> tuple:
    """(HTTP status, body bytes) of one GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def cmd_wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    status = None
    # The first page of the gallery: how long a phone opening it after a reboot waits for photos.
    first_page_ms, first_page_items = None, 0
    while time.monotonic() < deadline:
        if not alive(args.pid):
            print(f"tools.py: the server (pid {args.pid}) exited while indexing", file=sys.stderr)
            return 1
        try:
            if first_page_ms is None:
                code, body = get(args.url.rstrip("/") + "/api/media?limit=100", timeout=2.0)
                items = json.loads(body).get("items", []) if code == 200 else []
                if items:
                    first_page_ms = (time.time_ns() - args.start_ns) / 1e6
                    first_page_items = len(items)
            code, body = get(args.url.rstrip("/") + "/api/status", timeout=2.0)
            if code == 200:
                status = json.loads(body)
                if status["indexing"]["done"]:
                    break
        except (OSError, ValueError):
            pass  # not answering yet, or a torn read: poll again
        time.sleep(POLL_INTERVAL_S)
    else:
        print(
            f"tools.py: indexing not done after {args.timeout:.0f} s; last status: {status}", file=sys.stderr
        )
        return 1
    wall_ms = (time.time_ns() - args.start_ns) / 1e6
    ix, meta = status["indexing"], status["metadata"]
    print(f"wall_ms={wall_ms:.0f}")
    print(f"first_page_ms={first_page_ms if first_page_ms is not None else wall_ms:.0f}")
    print(f"first_page_items={first_page_items}")
    print(f"elapsed_ms={ix['elapsed_ms']}")
    print(f"items={status['items']}")
    print(f"errors={ix.get('errors', 0)}")
    print(f"from_xattr={meta['from_xattr']}")
    print(f"from_state_dir={meta['from_state_dir']}")
    print(f"extracted={meta['extracted']}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    times = []
    first_code, first_body = None, b""
    for _ in range(args.count):
        t0 = time.perf_counter()
        code, body = get(args.url)
        times.append((time.perf_counter() - t0) * 1000)
        if first_code is None:
            first_code, first_body = code, body
    print(f"first_ms={times[0]:.2f}")
    print(f"median_ms={statistics.median(times):.2f}")
    print(f"max_ms={max(times):.2f}")
    print(f"status={first_code}")
    try:
        doc = json.loads(first_body)
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            print(f"items={len(doc['items'])}")
    except ValueError:
        pass
    return 0


def cmd_strip(args: argparse.Namespace) -> int:
    removed = 0
    for folder, _dirs, files in os.walk(args.dir):
        for name in files:
            try:
                os.removexattr(os.path.join(folder, name), META_ATTR, follow_symlinks=False)
                removed += 1
            except OSError:
                pass  # no attribute (ENODATA) or none possible: nothing to strip
    print(f"removed={removed}")
    return 0


def cmd_preload(args: argparse.Namespace) -> int:
    files = 0
    for folder, _dirs, names in os.walk(args.dir):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                while f.read(1 << 16):
                    pass
            files += 1
    print(f"files={files}")
    return 0


def cmd_xattr_info(args: argparse.Namespace) -> int:
    try:
        record = os.getxattr(args.file, META_ATTR, follow_symlinks=False)
    except OSError:
        print("bytes=0")
        print("own_block=no")
        return 0
    st = os.stat(args.file, follow_symlinks=False)
    data_sectors = -(-st.st_size // st.st_blksize) * (st.st_blksize // 512)
    print(f"bytes={len(record)}")
    # st_blocks counts 512-byte sectors, an external attribute block included.
    print(f"own_block={'yes' if st.st_blocks > data_sectors else 'no'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait", help="wait for indexing.done")
    w.add_argument("url")
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--start-ns", type=int, required=True)
    w.add_argument("--timeout", type=float, default=900.0)
    s = sub.add_parser("sample", help="time sequential GETs")
    s.add_argument("url")
    s.add_argument("--count", type=int, default=20)
    st = sub.add_parser("strip", help="remove user.spis.meta below a folder")
    st.add_argument("dir")
    sub.add_parser("preload", help="read every file once").add_argument("dir")
    sub.add_parser("xattr-info", help="size and placement of one record").add_argument("file")
    args = parser.parse_args()
    commands = {
        "wait": cmd_wait,
        "sample": cmd_sample,
        "strip": cmd_strip,
        "preload": cmd_preload,
        "xattr-info": cmd_xattr_info,
    }
    return commands[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
