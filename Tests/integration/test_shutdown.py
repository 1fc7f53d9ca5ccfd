"""SIGTERM while a request is in flight: the request finishes, then assetd exits 0.

This runs a second assetd (the release binary) on its own socket and database, and
speaks FastCGI to it directly so that the request can be held open mid-body."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

from conftest import make_token, read_env_file

from private_assetd import BEGIN, PARAMS, STDIN, pair, read_stdout, record


def read_response(sock):
    sock.settimeout(15)
    return read_stdout(sock)[0]


def start_assetd(env_file, workdir, **overrides):
    env = dict(os.environ)
    env.update(read_env_file(env_file))
    env.update({k: str(v) for k, v in overrides.items()})
    env["ASSETD_SOCKET"] = os.path.join(workdir, "drain.sock")
    env["ASSETD_DATABASE"] = os.path.join(workdir, "drain.sqlite")
    env["ASSETD_STATE_DIR"] = workdir
    env["ASSETD_THREADS"] = str(overrides.get("ASSETD_THREADS", 2))
    log = open(os.path.join(workdir, "assetd.log"), "wb")
    process = subprocess.Popen([os.environ["ASSETD_BIN"], "serve"], env=env, stdout=log, stderr=log)
    deadline = time.time() + 20

    def accepts():
        # Ready when the socket accepts, not when its file appears: bind() makes the file
        # before listen() (a refused connection on a loaded host otherwise).
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(env["ASSETD_SOCKET"])
            return True
        except OSError:
            return False
        finally:
            probe.close()
    while not accepts():
        assert process.poll() is None, open(os.path.join(workdir, "assetd.log")).read()
        assert time.time() < deadline, "assetd did not accept on its socket"
        time.sleep(0.05)
    return process, env["ASSETD_SOCKET"], env["ASSETD_JWT_SECRET"]


def test_sigterm_lets_the_request_in_flight_finish():
    with tempfile.TemporaryDirectory() as workdir:
        process, path, secret = start_assetd(os.environ["ASSETD_ENV_FILE"], workdir)
        try:
            body = json.dumps({"uploadId": "no-such-upload", "assetId": 1, "workspaceId": 1, "pad": "x" * 5000}).encode()
            params = b"".join(pair(k, v) for k, v in {
                "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/s3/abort-upload", "QUERY_STRING": "",
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                "HTTP_AUTHORIZATION": "Bearer " + make_token(secret, "drain", [1]),
            }.items())
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, params) + record(PARAMS, b""))
            sock.sendall(record(STDIN, body[:100]))
            time.sleep(0.5)  # the worker is now inside the handler, waiting for the rest of the body

            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None, "assetd exited with a request in flight"

            sock.sendall(record(STDIN, body[100:]) + record(STDIN, b""))
            response = read_response(sock).decode()
            assert response.startswith("Status: 404"), response
            head, _, payload = response.partition("\r\n\r\n")
            assert "Content-Type: application/json" in head
            assert "was not found" in json.loads(payload)["error"]

            assert process.wait(timeout=12) == 0
            assert not os.path.exists(path), "the socket file was left behind"
        finally:
            if process.poll() is None:
                process.kill()


def stop_signals_blocked(pid):
    """Whether the process's main thread blocks SIGTERM (bit 15 of SigBlk in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)) != 0
    except FileNotFoundError:
        pass
    return False


def test_sigterm_while_starting_is_kept_and_drains():
    """A SIGTERM that comes before assetd accepts (here: as soon as its main thread blocks
    the signal, before the socket exists) must not kill it: it waits for the server, which
    drains and exits 0. Before, threads started ahead of the block took it and died."""
    with tempfile.TemporaryDirectory() as workdir:
        env = dict(os.environ)
        env.update(read_env_file(os.environ["ASSETD_ENV_FILE"]))
        path = os.path.join(workdir, "early.sock")
        env.update({"ASSETD_SOCKET": path, "ASSETD_DATABASE": os.path.join(workdir, "early.sqlite"),
                    "ASSETD_STATE_DIR": workdir, "ASSETD_THREADS": "2"})
        log_path = os.path.join(workdir, "assetd.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen([os.environ["ASSETD_BIN"], "serve"], env=env, stdout=log, stderr=log)
        try:
            # As soon as the main thread blocks SIGTERM, or at the latest when start-up logs
            # "starting" (the database is open; the socket comes next): whichever is first.
            def log_text():
                with open(log_path, errors="replace") as f:
                    return f.read()
            deadline = time.time() + 20
            while not stop_signals_blocked(process.pid) and "] starting" not in log_text():
                assert process.poll() is None, log_text()
                assert time.time() < deadline, "assetd neither blocked SIGTERM nor started"
                time.sleep(0.0005)
            process.send_signal(signal.SIGTERM)
            serving_before = "assetd is serving" in log_text()
            status = process.wait(timeout=30)
            text = open(log_path, errors="replace").read()
            assert status == 0, (status, text[-3000:])
            assert "signal received; draining requests in flight" in text, text[-3000:]
            assert "drained; exiting" in text, text[-3000:]
            assert not serving_before, "assetd was already serving: not an early SIGTERM"
            assert not os.path.exists(path), "the socket file was left behind"
        finally:
            if process.poll() is None:
                process.kill()


def test_second_sigterm_during_the_drain_is_ignored():
    """Two SIGTERMs while a request is in flight: the second is logged and ignored, the
    request still completes and assetd exits 0 (the drain is bounded at 10 s anyway)."""
    with tempfile.TemporaryDirectory() as workdir:
        process, path, secret = start_assetd(os.environ["ASSETD_ENV_FILE"], workdir)
        try:
            body = json.dumps({"uploadId": "no-such-upload", "assetId": 1, "workspaceId": 1, "pad": "x" * 5000}).encode()
            params = b"".join(pair(k, v) for k, v in {
                "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/s3/abort-upload", "QUERY_STRING": "",
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                "HTTP_AUTHORIZATION": "Bearer " + make_token(secret, "drain", [1]),
            }.items())
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, params) + record(PARAMS, b""))
            sock.sendall(record(STDIN, body[:100]))
            time.sleep(0.5)  # the worker is inside the handler, waiting for the rest of the body

            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None, f"assetd died of the second SIGTERM (status {process.returncode})"

            sock.sendall(record(STDIN, body[100:]) + record(STDIN, b""))
            response = read_response(sock).decode()
            assert response.startswith("Status: 404"), response
            assert process.wait(timeout=12) == 0
            text = open(os.path.join(workdir, "assetd.log"), errors="replace").read()
            assert "signal received while draining; ignored" in text, text[-3000:]
            assert "drained; exiting" in text, text[-3000:]
        finally:
            if process.poll() is None:
                process.kill()


def get(path, uri, request_id):
    """One GET over FastCGI, with nginx's X-Request-Id; the response's status line."""
    params = b"".join(pair(k, v) for k, v in {
        "REQUEST_METHOD": "GET", "DOCUMENT_URI": uri, "QUERY_STRING": "", "HTTP_X_REQUEST_ID": request_id,
    }.items())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, params) + record(PARAMS, b"")
                     + record(STDIN, b""))
        return read_response(sock).decode().split("\r\n", 1)[0]
    finally:
        sock.close()


def access_line_arrival(request_id, within, **settings):
    """Starts a private assetd with `settings`, makes one request, and returns its access
    line once it is in the log, failing if that takes longer than `within` seconds."""
    with tempfile.TemporaryDirectory() as workdir:
        process, path, _ = start_assetd(os.environ["ASSETD_ENV_FILE"], workdir, ASSETD_LOG_LEVEL="info", **settings)
        log_path = os.path.join(workdir, "assetd.log")
        try:
            assert get(path, "/healthz", request_id) == "Status: 200 OK"
            answered = time.time()
            while request_id not in open(log_path, errors="replace").read():
                assert time.time() - answered < within, f"the access line did not arrive within {within} s ({settings})"
                time.sleep(0.02)
            return next(l for l in open(log_path, errors="replace") if request_id in l)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=12)


def test_a_held_access_line_is_written_within_the_flush_interval():
    """With ASSETD_ACCESS_LOG_BUFFER set, access lines are held a worker at a time and
    written at the latest ASSETD_ACCESS_LOG_FLUSH (1 s) after: one request's line, far from
    filling a buffer, is in the log within that bound (3 s: room for a loaded host to
    schedule the flusher)."""
    request_id = "0af7651916cd43dd8448eb211c80319c"
    line = access_line_arrival(request_id, 3, ASSETD_ACCESS_LOG_BUFFER=4096)
    assert re.search(r" info assetd: duration_ms=[0-9.]+ method=GET request_id=" + request_id
                     + r" route=/healthz status=200 \[AssetdApp\] request$", line.rstrip("\n")), line


def test_by_default_each_access_line_is_written_as_its_request_ends():
    """ASSETD_ACCESS_LOG_BUFFER is 0 unless set, as nginx's access log is unbuffered unless
    told: even with a flush interval of a minute, a request's line is there at once."""
    access_line_arrival("5d0c2b0e9a8f4f6e8f00c1d2e3f4a5b6", 0.5, ASSETD_ACCESS_LOG_FLUSH=60)


def test_sigterm_writes_the_access_lines_held():
    """With a flush interval longer than the test, only the shutdown can write the lines
    held: after SIGTERM every request's line is in the log, before the last line."""
    with tempfile.TemporaryDirectory() as workdir:
        process, path, _ = start_assetd(os.environ["ASSETD_ENV_FILE"], workdir, ASSETD_LOG_LEVEL="info",
                                        ASSETD_ACCESS_LOG_BUFFER=4096, ASSETD_ACCESS_LOG_FLUSH=60)
        log_path = os.path.join(workdir, "assetd.log")
        try:
            ids = [f"{n:032x}" for n in range(1, 6)]
            for request_id in ids:
                assert get(path, "/healthz", request_id) == "Status: 200 OK"
            time.sleep(0.3)
            held = open(log_path, errors="replace").read()
            assert not any(request_id in held for request_id in ids), "the lines were not held"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=12) == 0
            text = open(log_path, errors="replace").read()
            for request_id in ids:
                assert f"request_id={request_id} route=/healthz status=200" in text, text[-3000:]
            assert text.rindex(ids[-1]) < text.index("drained; exiting"), text[-3000:]
        finally:
            if process.poll() is None:
                process.kill()


def test_sigterm_under_requests_exits_0_every_time():
    """Stops under a stream of requests, for 20 s: every one exits 0. A worker that ended
    its thread as the stop began was sent the shutdown's wake-up (pthread_kill on an ended
    thread): SIGSEGV in about one stop in ten, before the fix."""
    import threading
    deadline, statuses = time.time() + 20, []
    while time.time() < deadline:
        with tempfile.TemporaryDirectory() as workdir:
            # 16 workers: more 8 MiB stacks than glibc keeps cached, so an ended one is unmapped.
            process, path, _ = start_assetd(os.environ["ASSETD_ENV_FILE"], workdir, ASSETD_THREADS=16)
            params = b"".join(pair(k, v) for k, v in {
                "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/healthz", "QUERY_STRING": "",
            }.items())
            stop = threading.Event()

            def load():
                while not stop.is_set():
                    try:
                        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        sock.settimeout(5)
                        sock.connect(path)
                        sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, params)
                                     + record(PARAMS, b"") + record(STDIN, b""))
                        read_stdout(sock)
                    except OSError:
                        pass
                    finally:
                        sock.close()
            clients = [threading.Thread(target=load) for _ in range(6)]
            try:
                for client in clients:
                    client.start()
                time.sleep(0.3 + (len(statuses) % 5) / 10)
                process.send_signal(signal.SIGTERM)
                statuses.append(process.wait(timeout=15))
            finally:
                stop.set()
                for client in clients:
                    client.join()
                if process.poll() is None:
                    process.kill()
    assert len(statuses) >= 5
    assert statuses == [0] * len(statuses), f"exit statuses of {len(statuses)} stops: {statuses} (-11 = SIGSEGV)"
