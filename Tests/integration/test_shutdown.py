"""SIGTERM while a request is in flight: the request finishes, then assetd exits 0.

This runs a second assetd (the release binary) on its own socket and database, and
speaks FastCGI to it directly so that the request can be held open mid-body."""
import json
import os
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


def start_assetd(env_file, workdir):
    env = dict(os.environ)
    env.update(read_env_file(env_file))
    env["ASSETD_SOCKET"] = os.path.join(workdir, "drain.sock")
    env["ASSETD_DATABASE"] = os.path.join(workdir, "drain.sqlite")
    env["ASSETD_STATE_DIR"] = workdir
    env["ASSETD_THREADS"] = "2"
    log = open(os.path.join(workdir, "assetd.log"), "wb")
    process = subprocess.Popen([os.environ["ASSETD_BIN"], "serve"], env=env, stdout=log, stderr=log)
    deadline = time.time() + 20
    while not os.path.exists(env["ASSETD_SOCKET"]):
        assert process.poll() is None, open(os.path.join(workdir, "assetd.log")).read()
        assert time.time() < deadline, "assetd did not create its socket"
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
