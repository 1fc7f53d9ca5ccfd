"""Issue 17, untrusted decoders away from the secrets: thumbnails are made by the
children of assetd-thumbnailer, a zygote (assetd's child here) that forks one per task,
each with an empty environment and resource limits, under a decode budget; a child that
dies costs one task, the zygote's death a retry, never assetd; assetd, the zygote and
its children are not dumpable. Each test runs a private assetd (private_assetd.py) over
raw FastCGI."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import sqlite3
import struct
import zlib

import pytest

from private_assetd import PrivateAssetd, form, wait_until

NOBODY = 65534


def interlaced_png(side=10000, seed=0):
    """An Adam7-interlaced 16-bit RGBA PNG of side x side: ~800 MB decoded, ~1 MB stored."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    packer = zlib.compressobj(9)
    out = []
    # The 7 passes: (x start, y start, x step, y step).
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
        width = (side - x0 + dx - 1) // dx
        rows = (side - y0 + dy - 1) // dy
        if width == 0 or rows == 0:
            continue
        line = b"\0" * (1 + width * 8)
        block = line * max(1, (4 << 20) // len(line))
        per_block = len(block) // len(line)
        done = 0
        while done < rows:
            n = min(per_block, rows - done)
            out.append(packer.compress(block[:n * len(line)]))
            done += n
    out.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"seed\0" + str(seed).encode())
            + chunk(b"IDAT", b"".join(out)) + chunk(b"IEND", b""))


def slow_pdf(rectangles=100_000, side=7200):
    """A one-page PDF that poppler takes seconds to draw, even at thumbnail size."""
    import random
    rng = random.Random(17)
    ops = "\n".join(f"0.{i % 9} 0.{i % 7} 0.5 rg {rng.randrange(side)} {rng.randrange(side)} {side // 3} {side // 3} re f"
                    for i in range(rectangles)).encode()
    content = zlib.compress(ops)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {side} {side}] /Contents 4 0 R >>".encode(),
               f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode() + content + b"\nendstream"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode() + b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    return out + f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()


def decoders(parent):
    """Pids of assetd-thumbnailer children of `parent`: the zygote of assetd, the
    decoding children of the zygote."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == parent and comm.startswith("assetd-thumbna"):
            found.append(int(entry))
    return found


def zygote(assetd):
    """The decoder zygote, assetd's child, once it is up."""
    found = wait_until("the decoder zygote", lambda: decoders(assetd), 20)
    assert len(found) == 1, found
    return found[0]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def upload(private, data, name):
    body, content_type = form(data, filename=name)
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body=body, content_type=content_type, timeout=120)
    assert r is not None and r.status == 200, r and (r.status, r.body[:300])
    return r.json()["asset"]["id"]


def thumbnail(private, asset_id):
    r = private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1")
    assert r is not None and r.status == 200
    return r.json()["asset"]["thumbnail"]


def settled(private, asset_id, seconds=90):
    """The thumbnail's state once settled, with the reason and attempts the task recorded."""
    wait_until(f"asset {asset_id}'s thumbnail", lambda: thumbnail(private, asset_id)["status"] != "pending", seconds)
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=5) as db:
        status, reason, attempts = db.execute("SELECT thumbnail_status, thumbnail_reason, thumbnail_attempts FROM asset WHERE id = ?",
                                              (asset_id,)).fetchone()
    return {"status": status, "reason": reason or "", "attempts": attempts}


@pytest.fixture
def private():
    with tempfile.TemporaryDirectory() as workdir:
        instance = PrivateAssetd(workdir, ASSETD_THREADS=4)
        try:
            yield instance
        finally:
            instance.close()


def test_four_interlaced_16bit_rgba_bombs_fail_on_their_budget_while_assetd_stays_small(private):
    """4 PNGs of 10000 x 10000, 16-bit RGBA, interlaced (each ~800 MB decoded) at once, with
    4 thumbnail tasks: presigns keep answering, assetd's RSS stays under 200 MB, and every
    task ends failed with the decode budget as its reason."""
    private.start(ASSETD_THUMBNAIL_CONCURRENCY=4)
    pid = private.process.pid
    pngs = [interlaced_png(seed=i) for i in range(4)]
    assert all(len(p) < 2 << 20 for p in pngs), [len(p) for p in pngs]
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(pid))
            except OSError:
                return
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ids, threads = [], []
        for i, data in enumerate(pngs):
            t = threading.Thread(target=lambda d=data, n=i: ids.append(upload(private, d, f"bomb{n}.png")))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        assert len(ids) == 4
        # Presigning answers while the tasks run.
        latencies = []
        deadline = time.time() + 60
        while time.time() < deadline and any(thumbnail(private, i)["status"] == "pending" for i in ids):
            started = time.monotonic()
            r = private.request("GET", "/s3/download-url", f"workspaceId=1&assetId={ids[0]}", timeout=10)
            latencies.append(time.monotonic() - started)
            assert r is not None and r.status == 200, r and r.body[:200]
            time.sleep(0.05)
        results = [settled(private, i) for i in ids]
    finally:
        stop.set()
        sampler.join()
    for result in results:
        assert result["status"] == "failed", result
        assert "decode budget exceeded: 10000x10000, 4 bands of 2 bytes" in result["reason"], result
    assert peak[0] < 200 * 1024, f"assetd's RSS peaked at {peak[0] // 1024} MB"
    assert not latencies or max(latencies) < 2, latencies
    assert private.process.poll() is None


def small_jpeg():
    from PIL import Image
    import io
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def test_a_decoder_killed_with_sigkill_costs_the_task_not_assetd(private):
    """Every child decoding a slow PDF is SIGKILLed mid-task: the task is retried, then
    ends failed with the reason (the zygote tells assetd the signal); the zygote lives on
    and assetd goes on serving."""
    private.start(ASSETD_THUMBNAIL_TIMEOUT=120)
    pid = private.process.pid
    the_zygote = zygote(pid)
    asset_id = upload(private, slow_pdf(), "slow.pdf")
    killed = set()
    deadline = time.time() + 90
    while time.time() < deadline and thumbnail(private, asset_id)["status"] == "pending":
        for child in decoders(the_zygote):
            try:
                os.kill(child, signal.SIGKILL)
                killed.add(child)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    result = settled(private, asset_id, 5)
    assert killed
    assert result["status"] == "failed", result
    assert "the decoder failed" in result["reason"] and "killed by SIGKILL" in result["reason"] and "after 3 attempts" in result["reason"], result
    assert private.process.poll() is None
    assert decoders(pid) == [the_zygote], "the zygote did not outlive its children"
    r = private.request("GET", "/healthz")
    assert r is not None and r.status == 200
    # And the next file gets its thumbnail from a fresh child of the same zygote.
    assert settled(private, upload(private, small_jpeg(), "ok.jpg"))["status"] == "ready"
    assert decoders(pid) == [the_zygote]


def test_the_zygote_killed_mid_task_is_restarted_and_the_task_retried(private):
    """The zygote SIGKILLed while its child decodes: the child dies with it, the task is
    retried on a new zygote that assetd starts, and ends ready; assetd never restarts."""
    private.start(ASSETD_THUMBNAIL_TIMEOUT=120)
    pid = private.process.pid
    first = zygote(pid)
    asset_id = upload(private, slow_pdf(rectangles=200_000), "slow.pdf")
    child = wait_until("a child at work", lambda: decoders(first), 20)[0]
    os.kill(first, signal.SIGKILL)
    wait_until("the child gone with its zygote", lambda: not os.path.exists(f"/proc/{child}/stat")
               or open(f"/proc/{child}/stat").read().split(") ")[1][0] in "ZX", 5)
    second = wait_until("a new zygote", lambda: [z for z in decoders(pid) if z != first], 20)
    assert len(second) == 1, second
    result = settled(private, asset_id, 120)
    assert result["status"] == "ready" and result["attempts"] >= 2, result
    assert private.process.poll() is None
    assert settled(private, upload(private, small_jpeg(), "ok.jpg"))["status"] == "ready"


def start_as(private, uid, **overrides):
    """private.start, with assetd running as `uid` (setpriv execs it: the pid stays)."""
    os.chown(private.workdir, uid, uid)
    env = dict(private.env)
    env.update({k: str(v) for k, v in overrides.items()})
    log = open(os.path.join(private.workdir, "assetd.log"), "ab")
    private.process = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", os.environ["ASSETD_BIN"], "serve"],
                                       env=env, stdout=log, stderr=log)
    path = env["ASSETD_SOCKET"]
    deadline = time.time() + 20
    while True:
        assert private.process.poll() is None, private.log()
        assert time.time() < deadline, "assetd did not start"
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                return
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.05)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to run assetd as another user")
def test_during_a_slow_decode_no_process_of_the_same_user_reads_a_secret(private):
    """A large PDF page decodes for seconds: meanwhile the decoder's /proc/PID/environ holds
    no secret (it is empty), and assetd's own cannot be read by another process of its
    user (assetd is not dumpable); the decoder can read it neither. Nor can a process of
    that user read the zygote's or a decoding child's (not dumpable either), so a
    compromised child cannot inspect its siblings or the zygote."""
    os.chmod(private.workdir, 0o700)
    start_as(private, NOBODY, ASSETD_THUMBNAIL_TIMEOUT=120)
    pid = private.process.pid
    asset_id = upload(private, slow_pdf(), "slow.pdf")
    secret = private.env["ASSETD_JWT_SECRET"].encode()
    aws = private.env["AWS_SECRET_ACCESS_KEY"].encode()
    the_zygote = zygote(pid)
    assert open(f"/proc/{the_zygote}/environ", "rb").read() == b""
    seen = wait_until("a decoder at work", lambda: decoders(the_zygote), 20)
    for child in seen:
        environ = open(f"/proc/{child}/environ", "rb").read()
        assert secret not in environ and aws not in environ and environ == b"", environ[:200]
        # Its connection (0, 1), assetd's standard error (2: libvips' warnings reach its
        # log), and past that the source file (the descriptor assetd sent, and libvips' own
        # open of it): no socket, no database.
        links = {int(fd): os.readlink(f"/proc/{child}/fd/{fd}") for fd in os.listdir(f"/proc/{child}/fd")}
        stderr = os.readlink(f"/proc/{pid}/fd/2")
        assert links[0].startswith("socket:") and links[1] == links[0] and links[2] == stderr, (links, stderr)
        # Past those: the source, or what the decoder opens itself (poppler's fonts under
        # /usr): never one of assetd's, nor the zygote's listening socket.
        assert all("/thumbnail-tmp/thumbnail-source-" in target or target.startswith("/usr/")
                   for fd, target in links.items() if fd > 2), links
    assert thumbnail(private, asset_id)["status"] == "pending", "the decode was not slow enough to look at it"
    # Same uid, another process: assetd's environment and memory stay closed to it.
    same_user = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "cat", f"/proc/{pid}/environ"],
                               capture_output=True)
    assert same_user.returncode != 0 and secret not in same_user.stdout, same_user.stdout[:200]
    assert b"Permission denied" in same_user.stderr, same_user.stderr
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0  # not dumpable: /proc/PID is root's
    for other in [the_zygote] + seen:
        peek = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "cat", f"/proc/{other}/environ"],
                              capture_output=True)
        assert peek.returncode != 0 and b"Permission denied" in peek.stderr, (other, peek.stderr)
        assert os.stat(f"/proc/{other}/environ").st_uid == 0
    assert settled(private, asset_id, 120)["status"] in ("ready", "failed")


def status_fields(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_a_decoding_child_is_confined(private):
    """The attacker's review (medium): a child that a hostile file gave code execution
    could read another task's video frame in the shared /tmp, or signal its siblings. Each
    child now confines itself before it reads its request (a Landlock domain of its own:
    no file written, no signal or /proc peek outside it; a seccomp filter: no ptrace, no
    group signal). Seen from outside while a child decodes: no new privileges and one
    seccomp filter more than its zygote; and a video's thumbnail is still made, with the
    frame in a memfd, though the child may write no file (in dev, the scratch directory
    where the frame used to go is its uid's)."""
    private.start(ASSETD_THUMBNAIL_TIMEOUT=120)
    pid = private.process.pid
    asset_id = upload(private, slow_pdf(), "slow.pdf")
    the_zygote = zygote(pid)
    seen = wait_until("a decoder at work", lambda: decoders(the_zygote), 20)
    child = status_fields(seen[0])
    parent = status_fields(the_zygote)
    assert child["NoNewPrivs"] == "1", child
    assert child["Seccomp"] == "2", child
    assert int(child["Seccomp_filters"]) == int(parent["Seccomp_filters"]) + 1, (child["Seccomp_filters"], parent["Seccomp_filters"])
    assert settled(private, asset_id, 120)["status"] in ("ready", "failed")
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
                    "-t", "2", "-pix_fmt", "yuv420p", os.path.join(private.workdir, "clip.mp4"), "-y"], check=True)
    video = upload(private, open(os.path.join(private.workdir, "clip.mp4"), "rb").read(), "clip.mp4")
    done = settled(private, video, 60)
    assert done["status"] == "ready", done
