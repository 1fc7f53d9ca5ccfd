"""A second assetd for the crash and outage tests: the release binary on its own socket,
database and bucket (so that it can be killed, restarted and pointed at a stopped S3
without touching the stack's own assetd), spoken to over raw FastCGI."""
import json
import os
import signal
import socket
import struct
import subprocess
import time
import uuid

import tempfile

import boto3
import pytest
from botocore.config import Config

from conftest import make_token, read_env_file

BEGIN, END, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6

# The PostgreSQL server of scripts/test's PostgreSQL pass; empty in the other passes.
POSTGRES_URL = os.environ.get("ASSETD_TEST_POSTGRES_URL", "")


def fresh_schema_url(prefix="pa_"):
    """The test server's URL with a new, empty schema as its search path."""
    schema = prefix + uuid.uuid4().hex[:16]
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", POSTGRES_URL, "-c", f"CREATE SCHEMA {schema}"], check=True,
                   capture_output=True)
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def pass_database():
    """Settings that put a private assetd's records where the pass keeps them: a fresh
    schema on the pass's PostgreSQL in the PostgreSQL pass, else (no setting) its own
    SQLite file."""
    return {"ASSETD_DATABASE": fresh_schema_url()} if POSTGRES_URL else {}


def record(kind, content, request_id=1):
    return struct.pack(">BBHHBB", 1, kind, request_id, len(content), 0, 0) + content


def pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def read_stdout(sock):
    """The STDOUT records of one answer, and whether its END_REQUEST came before EOF."""
    out, buffer = b"", b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out, False
        buffer += chunk
        while len(buffer) >= 8:
            _, kind, _, length, padding, _ = struct.unpack(">BBHHBB", buffer[:8])
            if len(buffer) < 8 + length + padding:
                break
            content = buffer[8:8 + length]
            buffer = buffer[8 + length + padding:]
            if kind == STDOUT:
                out += content
            elif kind == END:
                return out, True


class Response:
    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        self.headers = {}
        self.status = None
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                self.status = int(value.strip().split()[0])
            elif name:
                self.headers[name.strip().lower()] = value.strip()

    def json(self):
        return json.loads(self.body)


class PrivateAssetd:
    """One assetd process; `start` again after `kill` reuses the same database and bucket."""

    def __init__(self, workdir, **overrides):
        self.workdir = workdir
        self.env = dict(os.environ)
        self.env.update(read_env_file(os.environ["ASSETD_ENV_FILE"]))
        self.env.update({
            "ASSETD_SOCKET": os.path.join(workdir, "assetd.sock"),
            "ASSETD_DATABASE": os.path.join(workdir, "assetd.sqlite"),
            "ASSETD_STATE_DIR": workdir,
            "AWS_BUCKET": "assetd-private-" + uuid.uuid4().hex[:12],
        })
        self.env.update({k: str(v) for k, v in overrides.items()})
        self.process = None
        self.secret = self.env["ASSETD_JWT_SECRET"]
        self.token = make_token(self.secret, "private", [1])
        self.bucket = self.env["AWS_BUCKET"]
        self.s3 = boto3.client(
            "s3", endpoint_url=self.env["AWS_ENDPOINT_URL_S3"], region_name=self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}))
        self.s3.create_bucket(Bucket=self.bucket)

    def log(self):
        with open(os.path.join(self.workdir, "assetd.log"), errors="replace") as f:
            return f.read()

    def start(self, **overrides):
        env = dict(self.env)
        env.pop("ASSETD_FAULT", None)
        env.update({k: str(v) for k, v in overrides.items()})
        path = env["ASSETD_SOCKET"]
        if os.path.exists(path):
            os.unlink(path)
        log = open(os.path.join(self.workdir, "assetd.log"), "ab")
        self.process = subprocess.Popen([os.environ["ASSETD_BIN"], "serve"], env=env, stdout=log, stderr=log)
        # The socket file appears at bind(); wait until it accepts a connection too.
        deadline = time.time() + 20
        while True:
            assert self.process.poll() is None, self.log()
            assert time.time() < deadline, "assetd did not accept connections on its socket within 20 s"
            if os.path.exists(path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                    break
                except OSError:
                    pass
                finally:
                    probe.close()
            time.sleep(0.05)
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def request(self, method, uri, query="", body=b"", content_type="", token=True, timeout=60):
        """One request over FastCGI; None when the process died before it answered."""
        params = {"REQUEST_METHOD": method, "DOCUMENT_URI": uri, "QUERY_STRING": query,
                  "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
        if token:
            params["HTTP_AUTHORIZATION"] = "Bearer " + self.token
        encoded = b"".join(pair(k, v) for k, v in params.items())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.env["ASSETD_SOCKET"])
            out = record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, encoded) + record(PARAMS, b"")
            for i in range(0, len(body), 60000):
                out += record(STDIN, body[i:i + 60000])
            sock.sendall(out + record(STDIN, b""))
            raw, ended = read_stdout(sock)
            return Response(raw) if ended else None
        except (ConnectionResetError, BrokenPipeError):
            return None
        finally:
            sock.close()

    def keys(self):
        listed = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def multipart_uploads(self):
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def close(self):
        self.kill()
        try:
            for key in self.keys():
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            for upload in self.multipart_uploads():
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            self.s3.delete_bucket(Bucket=self.bucket)
        except Exception:  # the bucket is throwaway; a failed cleanup must not hide the test's result
            pass


@pytest.fixture
def private():
    """A private assetd (4 threads) for one test; its bucket is emptied and removed after."""
    with tempfile.TemporaryDirectory() as workdir:
        instance = PrivateAssetd(workdir, ASSETD_THREADS=4)
        try:
            yield instance
        finally:
            instance.close()


def form(file_bytes, filename="photo.png", boundary="assetdBoundary7"):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + file_bytes + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def wait_until(what, predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds} s")
