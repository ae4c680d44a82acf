#!/usr/bin/env python3
"""Many cameras at once, for scripts/bench/transfer.sh.

    uploads.py BASE SRC_DIR --clients 32 --photos 1000 --dir Cameras/load

Every photo in SRC_DIR (PHOTOS of them, by name) is PUT twice, by two different clients at the
same moment (the second copy offset by half the clients), so 2 x PHOTOS uploads from CLIENTS
threads race for the same names. Meanwhile one sampler thread times GET /api/media?limit=100 and
GET of a thumbnail of an item that existed before, back to back. Prints key=value lines: the
upload statuses, the seconds taken, uploads/s, the list and thumbnail p50/p99/max in ms and how
many samples each had, then whether every photo landed exactly once (listed once by the API, no
`NAME (2)` copies in the folder).

Bounded: each client sends a fixed number of requests, each request has a timeout, and the
sampler stops when the uploads end. Only BASE (127.0.0.1) is contacted. Standard library only.
"""

import argparse
import http.client
import json
import os
import statistics
import threading
import time
import urllib.parse

TIMEOUT_S = 60


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT_S)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("src")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--dir", default="Cameras/load")
    ap.add_argument("--thumb", required=True, help="a thumbnail path to sample")
    a = ap.parse_args()

    names = sorted(os.listdir(a.src))[: a.photos]
    bodies = {n: open(os.path.join(a.src, n), "rb").read() for n in names}
    # Client c sends photos c, c + clients, ...; the same list again shifted by half the clients,
    # so each photo is in flight twice at about the same time.
    jobs = [[] for _ in range(a.clients)]
    for i, n in enumerate(names):
        jobs[i % a.clients].append(n)
        jobs[(i + a.clients // 2) % a.clients].append(n)
    statuses = {}
    lock = threading.Lock()
    done = threading.Event()

    def client(mine):
        conn = connect(a.base)
        for n in mine:
            path = "/api/upload/" + urllib.parse.quote(f"{a.dir}/{n}")
            try:
                conn.request("PUT", path, body=bodies[n], headers={"Content-Type": "image/jpeg"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                status = f"error:{type(e).__name__}"
                conn.close()
                conn = connect(a.base)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    samples = {"list": [], "thumb": [], "bad": 0}

    def sampler():
        conn = connect(a.base)
        while not done.is_set():
            for kind, path in (("list", "/api/media?limit=100"), ("thumb", a.thumb)):
                t0 = time.perf_counter()
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = connect(a.base)
                samples[kind].append((time.perf_counter() - t0) * 1000)
                if not ok:
                    samples["bad"] += 1
        conn.close()

    s = threading.Thread(target=sampler)
    s.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    done.set()
    s.join()

    print("statuses=" + ",".join(f"{k}:{v}" for k, v in sorted(statuses.items(), key=str)))
    print(f"seconds={took:.2f}")
    print(f"uploads_per_s={2 * len(names) / took:.0f}")
    for kind in ("list", "thumb"):
        v = samples[kind]
        print(f"{kind}_samples={len(v)}")
        print(f"{kind}_p50_ms={percentile(v, 50):.1f}")
        print(f"{kind}_p99_ms={percentile(v, 99):.1f}")
        print(f"{kind}_max_ms={max(v) if v else float('nan'):.1f}")
    print(f"sample_failures={samples['bad']}")

    # Exactly once: the API lists each name once in the folder, and nothing else is there.
    listed = []
    cursor = None
    conn = connect(a.base)
    for _ in range(1000):
        q = {"dir": a.dir, "limit": "500"}
        if cursor:
            q["cursor"] = cursor
        conn.request("GET", "/api/media?" + urllib.parse.urlencode(q))
        page = json.loads(conn.getresponse().read())
        listed += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    conn.close()
    print(f"listed={len(listed)}")
    print(f"listed_unique={len(set(listed))}")
    print(f"exactly_once={'yes' if sorted(listed) == names else 'no'}")


if __name__ == "__main__":
    main()
