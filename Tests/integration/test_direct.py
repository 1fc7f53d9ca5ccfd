"""POST /api/assets/upload through TLS nginx: content checked by libmagic, stored by PutObject."""
import io
import os
import re
import struct
import tempfile
import time
import zipfile

import pytest
import requests

from conftest import CERTIFICATE, Client, assert_json_error, make_token

MiB = 1024 * 1024


def images():
    """Real files of each allowed kind, made here (Pillow for the images and the PDF)."""
    from PIL import Image

    picture = Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3))
    files = {}
    for kind, fmt in [("jpeg", "JPEG"), ("png", "PNG"), ("gif", "GIF"), ("webp", "WEBP"), ("pdf", "PDF")]:
        out = io.BytesIO()
        picture.save(out, fmt)
        files[kind] = out.getvalue()
    files["mp4"] = mp4()
    return files


def mp4():
    """A small ISO base media file: ftyp, an empty moov and some mdat bytes."""
    def box(kind, payload):
        return struct.pack(">I", 8 + len(payload)) + kind + payload
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, 0) + struct.pack(">I", 0x00010000)
               + struct.pack(">H", 0x0100) + bytes(10) + bytes(36) + bytes(24) + struct.pack(">I", 2))
    return ftyp + box(b"moov", mvhd) + box(b"mdat", os.urandom(2048))


EXPECTED = {"jpeg": ("image/jpeg", "jpg"), "png": ("image/png", "png"), "gif": ("image/gif", "gif"),
            "webp": ("image/webp", "webp"), "pdf": ("application/pdf", "pdf"), "mp4": ("video/mp4", "mp4")}


def post(client, files, data=None, params=None, raw=None, headers=None):
    h = client.headers(headers)
    if raw is not None:
        return requests.post(client.base + "/api/assets/upload", params=params, data=raw, headers=h, timeout=120, verify=CERTIFICATE)
    return requests.post(client.base + "/api/assets/upload", params=params, files=files, data=data, headers=h,
                         timeout=120, verify=CERTIFICATE)


def listed(s3, bucket, prefix):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


@pytest.mark.s3_wiring
def test_each_kind_is_stored_under_its_detected_type(alice, s3, bucket, settings):
    for kind, data in images().items():
        r = post(alice, {"file": (f"upload.{kind}", data, "application/octet-stream")}, params={"workspaceId": 1})
        assert r.status_code == 200, (kind, r.text)
        asset = r.json()["asset"]
        mime, ext = EXPECTED[kind]
        assert asset["fileType"] == mime, kind
        assert asset["key"] == f"1/digital_assets/{asset['id']}.{ext}"
        assert asset["status"] == "ready" and asset["size"] == len(data)
        stored = s3.get_object(Bucket=bucket, Key=asset["key"])
        assert stored["Body"].read() == data, kind
        assert stored["ContentType"] == mime
        again = alice.get(f"/api/assets/{asset['id']}", workspaceId=1).json()["asset"]
        # The thumbnail, and the media metadata taken in its pass, move on by themselves
        # after the upload (test_thumbnails.py and test_media_metadata.py check them).
        assert again.pop("thumbnail")["status"] in ("pending", "ready", "failed")
        asset.pop("thumbnail")
        assert set(again.pop("media")) == set(asset.pop("media"))
        assert again == asset
    assert_no_spool_left(settings)


@pytest.mark.s3_wiring
def test_a_large_file_is_stored_with_its_own_digests(alice, s3, bucket, settings):
    """From 256 KiB on, the digests follow the spool on threads of their own: the object must still
    be byte-identical, and its ETag the MD5 of the bytes (a single PutObject's ETag)."""
    import hashlib
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (1500, 1500), os.urandom(1500 * 1500 * 3)).save(out, "JPEG", quality=95)
    data = out.getvalue()
    assert len(data) > 2 * MiB  # over SpoolFile.backgroundDigestBytes
    r = post(alice, {"file": ("big.jpg", data, "image/jpeg")}, params={"workspaceId": 1})
    assert r.status_code == 200, r.text
    asset = r.json()["asset"]
    assert asset["size"] == len(data)
    assert asset["etag"].strip('"') == hashlib.md5(data).hexdigest()
    stored = s3.get_object(Bucket=bucket, Key=asset["key"])
    assert stored["Body"].read() == data
    assert stored["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert_no_spool_left(settings)  # the digest threads stopped, and the spool closed


def test_png_sent_as_jpeg_is_stored_as_png(alice, s3, bucket, settings):
    png = images()["png"]
    r = post(alice, {"file": ("holiday.jpg", png, "image/jpeg")}, data={"workspaceId": "1"})
    assert r.status_code == 200, r.text
    asset = r.json()["asset"]
    assert asset["fileType"] == "image/png"
    assert asset["key"].endswith(".png")
    assert asset["fileName"] == "holiday.jpg"
    assert s3.head_object(Bucket=bucket, Key=asset["key"])["ContentType"] == "image/png"
    assert_no_spool_left(settings)


def spool_directory(settings):
    return os.path.realpath(settings.get("ASSETD_TMP_DIR") or os.path.join(settings["ASSETD_STATE_DIR"], "tmp"))


def assetd_pids(settings):
    """Every assetd of the stack: pids/assetd.pid, or assetd-1.pid .. assetd-N.pid
    (ASSETD_DEV_INSTANCES=N), in that order."""
    folder = os.path.join(settings["ASSETD_STATE_DIR"], "pids")
    names = sorted(n for n in os.listdir(folder) if re.fullmatch(r"assetd(-\d+)?\.pid", n))
    assert names, f"no assetd pid file in {folder}"
    return [int(open(os.path.join(folder, n)).read().strip()) for n in names]


def assetd_pid(settings):
    """The assetd on the settings file's ASSETD_SOCKET: the first instance."""
    return assetd_pids(settings)[0]


def deleted_files_open(pid, directory):
    """The descriptors of process `pid` that point at unlinked files in `directory`, as
    /proc/PID/fd shows them: '<path> (deleted)'. A spool file never has a name (O_TMPFILE,
    or one unlinked at once), so this, not the directory listing, is where a leaked one shows."""
    found = []
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except FileNotFoundError:
            continue  # closed while we looked
        if target.startswith(directory + "/") and target.endswith(" (deleted)"):
            found.append(f"fd {fd} -> {target}")
    return found


def assert_no_spool_left(settings, wait=5.0):
    """No spool file in assetd's tmp directory, by name or by an open descriptor of the
    running assetd. Waits a little: the spool closes once the request ends."""
    tmp = spool_directory(settings)
    assert os.listdir(tmp) == [], "a spool file was left behind"
    for pid in assetd_pids(settings):
        deadline = time.monotonic() + wait
        while (open_spools := deleted_files_open(pid, tmp)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_spools == [], f"assetd (pid {pid}) still holds spool files open: {open_spools}"


def test_the_spool_check_sees_an_unlinked_open_file(settings):
    """The check above can fail: a file made and unlinked as SpoolFile does, in the same
    directory and held open by this process, is found, and is gone once closed."""
    tmp = spool_directory(settings)
    fd, path = tempfile.mkstemp(prefix="upload-", dir=tmp)
    try:
        os.unlink(path)
        assert deleted_files_open(os.getpid(), tmp) == [f"fd {fd} -> {path} (deleted)"]
        assert deleted_files_open(assetd_pid(settings), tmp) == []
    finally:
        os.close(fd)
    assert deleted_files_open(os.getpid(), tmp) == []


def test_the_spool_check_sees_the_spool_of_a_request_in_flight(settings, secret):
    """And it sees assetd's own spool: while a direct upload is held mid-body over raw
    FastCGI, assetd holds one unlinked spool file open; once the body ends, none."""
    import json
    import socket

    from test_shutdown import BEGIN, PARAMS, STDIN, pair, read_response, record

    boundary = "----assetdSpoolBoundary"
    png = images()["png"]
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    params = b"".join(pair(k, v) for k, v in {
        "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/api/assets/upload", "QUERY_STRING": "workspaceId=34",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}", "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": "Bearer " + make_token(secret, "eve", [34]),
    }.items())
    tmp, pid = spool_directory(settings), assetd_pid(settings)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(settings["ASSETD_SOCKET"])
        sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) + record(PARAMS, params) + record(PARAMS, b""))
        sock.sendall(record(STDIN, body[:100]))
        deadline = time.monotonic() + 10
        while not (held := deleted_files_open(pid, tmp)) and time.monotonic() < deadline:
            time.sleep(0.05)
        # One nameless file in assetd's spool directory (O_TMPFILE: /proc names it "#inode").
        assert len(held) == 1, held
        sock.sendall(record(STDIN, body[100:]) + record(STDIN, b""))
        response = read_response(sock).decode()
    assert response.startswith("Status: 200"), response[:300]
    assert json.loads(response.partition("\r\n\r\n")[2])["asset"]["fileType"] == "image/png"
    assert_no_spool_left(settings)


def refused_leaves_nothing(client, s3, bucket, settings, response, status, workspace):
    assert_json_error(response, status)
    assert_no_spool_left(settings)
    assert listed(s3, bucket, f"{workspace}/") == []
    assert client.get("/api/assets", workspaceId=workspace).json()["assets"] == []


def test_dangerous_or_empty_content_is_refused_and_leaves_nothing(base_url, secret, s3, bucket, settings):
    client = Client(base_url, make_token(secret, "eve", [31]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    with open("/bin/true", "rb") as f:
        elf = f.read()
    cases = [
        ("page.jpg", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "image/jpeg", 415),
        ("tool.png", elf, "image/png", 415),
        ("logo.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml", 415),
        ("photos.jpg", archive.getvalue(), "image/jpeg", 415),
        ("empty.png", b"", "image/png", 400),
    ]
    for name, data, claimed, status in cases:
        r = post(client, {"file": (name, data, claimed)}, params={"workspaceId": 31})
        refused_leaves_nothing(client, s3, bucket, settings, r, status, 31)


def test_form_errors(base_url, secret, s3, bucket, settings):
    client = Client(base_url, make_token(secret, "eve", [32]))
    png = images()["png"]
    two = post(client, [("file", ("a.png", png, "image/png")), ("file", ("b.png", png, "image/png"))], params={"workspaceId": 32})
    refused_leaves_nothing(client, s3, bucket, settings, two, 400, 32)
    missing = post(client, {"other": ("a.png", png, "image/png")}, params={"workspaceId": 32})
    refused_leaves_nothing(client, s3, bucket, settings, missing, 400, 32)
    boundary = "----assetdTestBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n").encode() + png
    truncated = post(client, None, params={"workspaceId": 32}, raw=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    refused_leaves_nothing(client, s3, bucket, settings, truncated, 400, 32)
    no_boundary = post(client, None, params={"workspaceId": 32}, raw=body + f"\r\n--{boundary}--\r\n".encode(),
                       headers={"Content-Type": "multipart/form-data"})
    refused_leaves_nothing(client, s3, bucket, settings, no_boundary, 400, 32)


def test_too_large_is_413_json_from_nginx(base_url, secret, s3, bucket, settings):
    client = Client(base_url, make_token(secret, "eve", [33]))
    big = os.urandom(40 * MiB)
    r = post(client, {"file": ("big.jpg", big, "image/jpeg")}, params={"workspaceId": 33})
    refused_leaves_nothing(client, s3, bucket, settings, r, 413, 33)


def test_workspace_and_token_checks(base_url, secret, alice, mallory):
    png = images()["png"]
    assert_json_error(post(mallory, {"file": ("a.png", png, "image/png")}, params={"workspaceId": 1}), 403)
    assert_json_error(post(mallory, {"file": ("a.png", png, "image/png")}, data={"workspaceId": "1"}), 403)
    assert_json_error(post(Client(base_url, None), {"file": ("a.png", png, "image/png")}, params={"workspaceId": 1}), 401)
    assert_json_error(post(alice, {"file": ("a.png", png, "image/png")}), 400)  # no workspaceId at all
    assert_json_error(post(alice, {"file": ("a.png", png, "image/png")}, params={"workspaceId": "../1"}), 400)
