#!/usr/bin/env python3
"""The cost of one decoder task, without the stack: assetd's request (DecoderProtocol)
with the source descriptor, N tasks of an 1800x1200 JPEG one after another, against the
decoder zygote (a fresh child per task) and, when given, an older assetd-thumbnailer
that served one connection per process (spawned per task, as before the zygote).
Wall time per task, and CPU: the children's from os.times() for the old binary, the
zygote's own and its children's from /proc/<zygote>/stat.

  python3 bench/decoder-cost.py .build/release/assetd-thumbnailer [OLD_BINARY] [N]
"""
import os, socket, struct, subprocess, sys, tempfile, time
from PIL import Image

zygote_bin = sys.argv[1]
old_bin = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
work = tempfile.mkdtemp(prefix="decoder-cost.")
path = f"{work}/in.jpg"
Image.frombytes("RGB", (90, 60), os.urandom(90 * 60 * 3)).resize((1800, 1200), Image.BICUBIC).save(path, "JPEG", quality=88)
body = (b"type=image/jpeg\nsize=512\nquality=80\nmax_pixels=100000000\nmax_decode_bytes=536870912\nvips_threads=1\n"
        b"memory_bytes=1610612736\ntimeout_s=60\nscratch=" + work.encode() + b"\n")
request = b"ATQ1" + struct.pack(">I", len(body)) + body
hz = os.sysconf("SC_CLK_TCK")


def task(connection):
    source = os.open(path, os.O_RDONLY)
    socket.send_fds(connection, [request], [source])
    os.close(source)
    header = b""
    while len(header) < 5:
        header += connection.recv(5 - len(header))
    length, got = struct.unpack(">I", header[1:])[0], 0
    while got < length:
        got += len(connection.recv(length - got))
    assert header[:1] == b"J", header


def report(what, wall, cpu):
    print(f"{what}: {wall / n * 1000:.0f} ms wall, {cpu / n * 1000:.0f} ms CPU per task ({n} tasks)")


if old_bin:
    before, start = os.times(), time.monotonic()
    for _ in range(n):
        ours, theirs = socket.socketpair()
        process = subprocess.Popen([old_bin], stdin=theirs, stdout=theirs, env={})
        theirs.close()
        task(ours)
        ours.close()
        process.wait()
    after = os.times()
    report("a process per task", time.monotonic() - start,
           after.children_user + after.children_system - before.children_user - before.children_system)

listener = socket.socket(socket.AF_UNIX)
listener.bind(f"{work}/decoder.sock")
listener.listen(16)
zygote = subprocess.Popen([zygote_bin], stdin=listener.fileno(), stdout=subprocess.DEVNULL, env={})


def connect():
    connection = socket.socket(socket.AF_UNIX)
    connection.connect(f"{work}/decoder.sock")
    return connection


def ticks():
    fields = open(f"/proc/{zygote.pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(map(int, fields[11:13])), sum(map(int, fields[13:15]))  # its own, its reaped children's


try:
    with connect() as c:
        task(c)  # libvips loaded
    time.sleep(0.3)
    (own0, children0), start = ticks(), time.monotonic()
    for _ in range(n):
        with connect() as c:
            task(c)
    wall = time.monotonic() - start
    time.sleep(0.3)  # the last child reaped
    own1, children1 = ticks()
    report("a child of the zygote", wall, (children1 - children0) / hz)
    print(f"  of which the zygote itself (the fork): {(own1 - own0) / hz / n * 1000:.1f} ms per task; load {open('/proc/loadavg').read().split()[0]}")
finally:
    zygote.kill()
