"""Resumable uploads with tuspy, a tus client written independently of spis, against the real server.

Run by tests/api/tus.sh, which makes the virtualenv and passes the server binary, a state dir, a
media dir and two real photos. It uploads one photo whole in small chunks, then half of a second
one, kills the server with SIGKILL, starts it again and lets tuspy go on from the offset the server
reports; both files must be in place, byte for byte, and listed. An upload-only token must be able
to do the same inside its folder and be refused outside it.
"""

import os
import signal
import subprocess
import sys
import time

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

BIN, STATE, MEDIA, PHOTO, OTHER = sys.argv[1:6]


def start():
    proc = subprocess.Popen(
        [BIN, "--media", MEDIA, "--state-dir", STATE, "--listen", "127.0.0.1:0", "--thumb-workers", "0"],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(STATE, "..", "spis.log"), "a"),
        env={**os.environ, "SPIS_NO_AUTH": "false"},
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("spis listening on "), line
    return proc, line.split()[-1]


def token(*args):
    out = subprocess.run([BIN, "--state-dir", STATE, "token", "create", *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def check(cond, what):
    if not cond:
        print(f"tus.py: FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"tus.py: {what}")


proc, base = start()
r = requests.post(f"{base}/api/setup", json={"password": "correct horse battery"}, timeout=10)
check(r.status_code == 200, "password chosen")
full = {"Authorization": f"Bearer {token('tuspy')}"}
cam = {"Authorization": f"Bearer {token('cam', '--upload-only', '--dir', 'Cameras/cam1')}"}
photo = open(PHOTO, "rb").read()
other = open(OTHER, "rb").read()

# One photo, whole, in 16 KiB chunks (many PATCH requests).
tus = tus_client.TusClient(f"{base}/api/uploads", headers=full)
up = tus.uploader(PHOTO, chunk_size=16 * 1024, metadata={"filename": "first.jpg", "dir": "Phone", "mtime": "1623758400"})
up.upload()
check(open(os.path.join(MEDIA, "Phone", "first.jpg"), "rb").read() == photo, f"tuspy uploaded first.jpg in {len(photo) // 16384 + 1} chunks")
check(int(os.stat(os.path.join(MEDIA, "Phone", "first.jpg")).st_mtime) == 1623758400, "with its own mtime")

# Half of another, then the server is killed.
up = tus.uploader(OTHER, chunk_size=8 * 1024, metadata={"filename": "second.jpg", "dir": "Phone"})
while up.offset < len(other) // 2:
    up.upload_chunk()
url, offset = up.url, up.offset
proc.send_signal(signal.SIGKILL)
proc.wait()
check(not os.path.exists(os.path.join(MEDIA, "Phone", "second.jpg")), f"killed at offset {offset} of {len(other)}: nothing visible")

proc, base = start()
tus = tus_client.TusClient(f"{base}/api/uploads", headers=full)
# A new uploader for the same URL asks the server for the offset (HEAD) and goes on from there.
up = tus.uploader(OTHER, url=url.replace(url.split("/api/")[0], base), chunk_size=8 * 1024)
check(up.offset == offset, f"the restarted server reports offset {up.offset}")
up.upload()
check(open(os.path.join(MEDIA, "Phone", "second.jpg"), "rb").read() == other, "second.jpg finished after the restart")

# The camera's token: inside its folder, and refused outside it.
tus_cam = tus_client.TusClient(f"{base}/api/uploads", headers=cam)
tus_cam.uploader(PHOTO, chunk_size=1 << 20, metadata={"filename": "snap.jpg"}).upload()
check(os.path.exists(os.path.join(MEDIA, "Cameras", "cam1", "snap.jpg")), "the upload-only token's photo went to its folder")
try:
    tus_cam.uploader(PHOTO, metadata={"filename": "snap.jpg", "dir": "Phone"}).upload()
    check(False, "the upload-only token was refused outside its folder")
except TusCommunicationError as e:
    check(e.status_code == 403, f"the upload-only token was refused outside its folder ({e.status_code})")

deadline = time.time() + 30
while True:
    items = requests.get(f"{base}/api/media", headers=full, timeout=10).json()["items"]
    names = sorted(i["name"] for i in items)
    if names == ["first.jpg", "second.jpg", "snap.jpg"] or time.time() > deadline:
        break
    time.sleep(0.1)
check(names == ["first.jpg", "second.jpg", "snap.jpg"], f"listed: {names}")
leftovers = [f for _, _, files in os.walk(MEDIA) for f in files if f.startswith(".spis-upload-")]
check(not leftovers, "no temp files left")
proc.terminate()
proc.wait()
