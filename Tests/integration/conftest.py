"""Fixtures for the integration suite: the real stack that scripts/test starts (TLS nginx,
the release assetd over FastCGI, a real S3 server). Nothing here is mocked."""
import base64
import hashlib
import hmac
import io
import json
import os
import random
import time

import boto3
import pytest
import requests
import urllib3
from botocore.config import Config

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
CERTIFICATE = os.path.join(os.environ.get("ASSETD_STATE_DIR", "state"), "tls", "cert.pem")


def pytest_configure(config):
    # scripts/test's external-mode pass (`-m s3_wiring`) runs only these: what changes when
    # assetd's S3 server is one the stack did not start (see docs/TESTING.md).
    config.addinivalue_line(
        "markers", "s3_wiring: exercises the S3 endpoint and bucket wiring (presigned URLs, S3 calls, "
        "setup-bucket, check-config, the CSP's S3 origin, a stack not owning its S3 server)")


def read_env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


@pytest.fixture(scope="session")
def settings():
    path = os.environ.get("ASSETD_ENV_FILE")
    if not path:
        pytest.exit("ASSETD_ENV_FILE is not set: run the suite through scripts/test", returncode=2)
    return read_env_file(path)


@pytest.fixture(scope="session")
def base_url():
    return os.environ.get("ASSETD_URL", "https://127.0.0.1:8443")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(secret, sub="user-1", workspaces=(1,), ttl=3600, alg="HS256", header=None, claims=None, drop=()):
    """A JWT signed as the test asks: any algorithm, claims or header, to forge bad ones."""
    now = int(time.time())
    payload = {"sub": sub, "workspaces": list(workspaces), "iat": now, "exp": now + ttl}
    payload.update(claims or {})
    for key in drop:
        payload.pop(key, None)
    head = header or {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(payload).encode())
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    return signing_input + "." + b64url(hmac.new(secret.encode(), signing_input.encode(), digest).digest())


class Client:
    """A browser-like client of assetd: bearer token, JSON, TLS through nginx."""

    def __init__(self, base_url, token):
        self.base = base_url
        self.session = requests.Session()
        # Verify TLS against the stack's own self-signed certificate (an environment's
        # REQUESTS_CA_BUNDLE would override session.verify, so pass it on every call).
        self.verify = CERTIFICATE
        self.token = token

    def headers(self, extra=None):
        h = {"Origin": "https://app.example.test"}
        if self.token is not None:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def get(self, path, **params):
        return self.session.get(self.base + path, params=params, headers=self.headers(), timeout=30, verify=self.verify)

    def post(self, path, body=None, data=None):
        if data is None:
            data = json.dumps(body)
        return self.session.post(self.base + path, data=data, timeout=60, verify=self.verify,
                                 headers=self.headers({"Content-Type": "application/json"}))

    def delete(self, path, **params):
        return self.session.delete(self.base + path, params=params, headers=self.headers(), timeout=30, verify=self.verify)


@pytest.fixture(scope="session")
def secret(settings):
    return settings["ASSETD_JWT_SECRET"]


@pytest.fixture(scope="session")
def alice(base_url, secret):
    """A user of workspace 1."""
    return Client(base_url, make_token(secret, "alice", [1]))


@pytest.fixture(scope="session")
def mallory(base_url, secret):
    """A user of workspace 2 only, who tries to reach workspace 1."""
    return Client(base_url, make_token(secret, "mallory", [2]))


@pytest.fixture(scope="session")
def s3(settings):
    return boto3.client(
        "s3",
        endpoint_url=settings["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        region_name=settings.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


@pytest.fixture(scope="session")
def bucket(settings):
    return settings["AWS_BUCKET"]


def noise_jpeg(min_bytes, max_bytes, seed=7):
    """A real JPEG (Pillow) of random pixels whose size falls in [min_bytes, max_bytes]."""
    from PIL import Image

    rng = random.Random(seed)
    width = 1600
    height = 1200
    while True:
        pixels = bytes(rng.getrandbits(8) for _ in range(width * height * 3)) if width * height < 200_000 else os.urandom(width * height * 3)
        out = io.BytesIO()
        Image.frombytes("RGB", (width, height), pixels).save(out, "JPEG", quality=95)
        data = out.getvalue()
        if min_bytes <= len(data) <= max_bytes:
            return data
        scale = ((min_bytes + max_bytes) / 2 / len(data)) ** 0.5
        width = max(16, int(width * scale))
        height = max(16, int(height * scale))


@pytest.fixture(scope="session")
def big_jpeg():
    # More than 12 MiB and at most 15 MiB: three 5 MiB parts, the last one short.
    return noise_jpeg(12 * 1024 * 1024 + 1, 15 * 1024 * 1024 - 1)


JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def as_jpeg(payload):
    """`payload` behind a JPEG header: what libmagic, and so complete-upload's content
    check, takes for image/jpeg. For tests about anything but the content itself."""
    return JPEG_HEAD + payload


def put_part(url, data):
    """PUT one part to a presigned URL, as the browser does."""
    r = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.headers["ETag"]


def start_upload(client, workspace=1, file_type="image/jpeg", **extra):
    r = client.get("/s3/start-upload", workspaceId=workspace, fileType=file_type, **extra)
    assert r.status_code == 200, r.text
    return r.json()


def upload_whole(client, data, workspace=1, file_type="image/jpeg", part_size=5 * 1024 * 1024):
    """Start, PUT every part, complete: the browser's flow. Returns (start, complete)."""
    started = start_upload(client, workspace, file_type, fileSize=len(data), fileName="photo.jpg")
    count = max(1, -(-len(data) // part_size))
    r = client.get("/s3/get-upload-urls", workspaceId=workspace, assetId=started["assetId"],
                   UploadId=started["uploadId"], partNumbers=f"1-{count}")
    assert r.status_code == 200, r.text
    parts = []
    for item in r.json()["urls"]:
        n = item["partNumber"]
        parts.append({"ETag": put_part(item["url"], data[(n - 1) * part_size:n * part_size]), "PartNumber": n})
    r = client.post("/s3/complete-upload", {"uploadId": started["uploadId"], "assetId": started["assetId"],
                                            "workspaceId": workspace, "parts": parts})
    assert r.status_code == 200, r.text
    return started, r.json()


def assert_json_error(response, status):
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert response.headers.get("Access-Control-Allow-Origin"), "CORS headers missing on an error"
    return body["error"]
