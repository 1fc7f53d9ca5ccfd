"""Versions, the content and size check after complete-upload, downloads under the asset's
own name, and a delete that leaves no key, through the real stack."""
import os
import signal
import time

import pytest
import requests

from conftest import assert_json_error, put_part, start_upload
from private_assetd import private, wait_until  # noqa: F401 (private is a fixture)
from test_hardening import s3_server_pid

MiB = 1024 * 1024


def pdf_bytes(tag):
    """A small real PDF whose content differs by `tag`."""
    body = f"BT /F1 12 Tf 72 712 Td ({tag}) Tj ET".encode()
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
            b"4 0 obj<</Length " + str(len(body)).encode() + b">>stream\n" + body + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def png_bytes():
    import io
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def upload(client, data, file_type, asset_id=None, **extra):
    """One-part multipart upload (a new version when asset_id is given); the complete answer."""
    params = dict(extra)
    if asset_id:
        params["assetId"] = asset_id
    started = start_upload(client, 1, file_type, **params)
    url = client.get("/s3/get-upload-url", workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"],
                     PartNumber=1).json()["url"]
    etag = put_part(url, data)
    r = client.post("/s3/complete-upload", {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                                            "parts": [{"ETag": etag, "PartNumber": 1}]})
    return started, r


def download(client, asset_id, **params):
    r = client.get("/s3/download-url", workspaceId=1, assetId=asset_id, **params)
    assert r.status_code == 200, r.text
    return requests.get(r.json()["url"], timeout=30)


def keys_of(s3, bucket, asset_id, thumbnails=False):
    """The asset's keys under every prefix (thumbnails only when asked: they come later,
    from a queue)."""
    found = []
    for prefix in ("1/digital_assets/", f"1/versions/{asset_id}/") + (("1/thumbnails/",) if thumbnails else ()):
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if item["Key"].startswith(f"1/versions/{asset_id}/") or name.split(".")[0] == str(asset_id):
                found.append(item["Key"])
    return sorted(found)


@pytest.mark.s3_wiring
def test_three_versions_of_a_pdf(alice, s3, bucket):
    contents = [pdf_bytes(f"version {n}") for n in (1, 2, 3)]
    started, r = upload(alice, contents[0], "application/pdf", fileName="report.pdf")
    assert r.status_code == 200, r.text
    asset_id = started["assetId"]
    for data in contents[1:]:
        _, r = upload(alice, data, "application/pdf", asset_id)
        assert r.status_code == 200, r.text
        assert r.json()["key"] == f"1/digital_assets/{asset_id}.pdf"
    for n in (1, 2):
        assert download(alice, asset_id, version=n).content == contents[n - 1]
    assert download(alice, asset_id).content == contents[2]
    assert download(alice, asset_id, version=3).content == contents[2]
    assert alice.get("/s3/download-url", workspaceId=1, assetId=asset_id, version=4).status_code == 404
    record = alice.get(f"/api/assets/{asset_id}", workspaceId=1).json()["asset"]
    assert [v["version"] for v in record["versions"]] == [1, 2, 3]
    assert [v["size"] for v in record["versions"]] == [len(c) for c in contents]
    assert keys_of(s3, bucket, asset_id) == [f"1/digital_assets/{asset_id}.pdf", f"1/versions/{asset_id}/v1.pdf",
                                             f"1/versions/{asset_id}/v2.pdf"]


def test_a_version_of_another_type(alice, s3, bucket):
    started, r = upload(alice, pdf_bytes("first"), "application/pdf")
    asset_id = started["assetId"]
    _, r = upload(alice, png_bytes(), "image/png", asset_id)
    assert r.status_code == 200, r.text
    assert r.json()["key"] == f"1/digital_assets/{asset_id}.png"
    assert keys_of(s3, bucket, asset_id) == [f"1/digital_assets/{asset_id}.png", f"1/versions/{asset_id}/v1.pdf"]
    head = s3.head_object(Bucket=bucket, Key=f"1/digital_assets/{asset_id}.png")
    assert head["ContentType"] == "image/png"
    record = alice.get(f"/api/assets/{asset_id}", workspaceId=1).json()["asset"]
    assert record["fileType"] == "image/png" and record["key"].endswith(".png")
    assert [v["fileType"] for v in record["versions"]] == ["application/pdf", "image/png"]


def test_html_declared_as_jpeg_is_415_and_nothing_stays(alice, s3, bucket):
    html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>" * 20
    started, r = upload(alice, html, "image/jpeg")
    assert "text/html" in assert_json_error(r, 415)
    assert keys_of(s3, bucket, started["assetId"]) == []
    assert alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]["status"] == "rejected"
    # The same as a new version: the previous bytes are still current.
    first = pdf_bytes("keep me")
    started, _ = upload(alice, first, "application/pdf")
    _, r = upload(alice, html, "application/pdf", started["assetId"])
    assert_json_error(r, 415)
    assert download(alice, started["assetId"]).content == first
    assert keys_of(s3, bucket, started["assetId"]) == [f"1/digital_assets/{started['assetId']}.pdf"]


def test_a_file_larger_than_declared_is_413_and_nothing_is_stored(alice, s3, bucket, big_jpeg):
    started = start_upload(alice, 1, "image/jpeg", fileSize=6 * MiB)
    part_size = started["partSize"]
    count = -(-len(big_jpeg) // part_size)
    urls = alice.get("/s3/get-upload-urls", workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"],
                     partNumbers=f"1-{count}").json()["urls"]
    parts = [{"ETag": put_part(u["url"], big_jpeg[(u["partNumber"] - 1) * part_size:u["partNumber"] * part_size]),
              "PartNumber": u["partNumber"]} for u in urls]
    r = alice.post("/s3/complete-upload", {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                                           "parts": parts})
    assert "declared" in assert_json_error(r, 413)
    assert keys_of(s3, bucket, started["assetId"]) == []


@pytest.mark.s3_wiring
def test_downloads_carry_the_recorded_name(alice, settings):
    name = "résumé ✓.pdf"
    started, r = upload(alice, pdf_bytes("cv"), "application/pdf", fileName=name)
    assert r.status_code == 200
    url = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"], disposition="attachment").json()["url"]
    assert "response-content-disposition=" in url
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200
    if os.environ.get("ASSETD_TEST_S3_STRICT") == "1":  # moto ignores response-content-disposition
        disposition = answer.headers["Content-Disposition"]
        assert disposition.startswith("attachment; ")
        assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93.pdf" in disposition
    r = alice.get("/s3/start-upload", workspaceId=1, fileType="application/pdf", fileName="a\r\nSet-Cookie: x=1.pdf")
    assert "fileName" in assert_json_error(r, 400)


@pytest.mark.s3_wiring
def test_delete_leaves_no_key_and_no_pending_upload(alice, s3, bucket):
    started, _ = upload(alice, pdf_bytes("a"), "application/pdf")
    asset_id = started["assetId"]
    upload(alice, pdf_bytes("b"), "application/pdf", asset_id)
    pending = start_upload(alice, 1, "application/pdf", assetId=asset_id)
    assert alice.delete("/s3/delete", workspaceId=1, assetId=asset_id).json() == {"success": True}
    assert keys_of(s3, bucket, asset_id, thumbnails=True) == []
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert not [u for u in uploads if u["UploadId"] == pending["uploadId"]]
    assert alice.delete("/s3/delete", workspaceId=1, assetId=asset_id).status_code == 200
    assert alice.delete("/s3/delete", workspaceId=1, assetId=987654321).status_code == 404
    for path, params in [("/s3/download-url", {}), ("/s3/list-parts", {"uploadId": pending["uploadId"]}),
                         ("/s3/get-upload-url", {"UploadId": pending["uploadId"], "PartNumber": 1})]:
        assert alice.get(path, workspaceId=1, assetId=asset_id, **params).status_code == 404, path
    assert alice.get(f"/api/assets/{asset_id}", workspaceId=1).status_code == 404


def private_upload(private, data, file_type, asset_id=None):
    query = f"workspaceId=1&fileType={file_type}" + (f"&assetId={asset_id}" if asset_id else "")
    r = private.request("GET", "/s3/start-upload", query)
    assert r.status == 200, r.body
    started = r.json()
    # A new version's parts go to its own archive key, which only S3's listing names.
    uploads = private.s3.list_multipart_uploads(Bucket=private.bucket)["Uploads"]
    staged = next(u["Key"] for u in uploads if u["UploadId"] == started["uploadId"])
    part = private.s3.upload_part(Bucket=private.bucket, Key=staged, UploadId=started["uploadId"], PartNumber=1, Body=data)
    import json
    body = json.dumps({"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                       "parts": [{"ETag": part["ETag"], "PartNumber": 1}]}).encode()
    return started, body


@pytest.mark.parametrize("point", ["version-recorded", "version-archived", "version-promoted"])
def test_a_version_switch_killed_midway_ends_consistent(private, point):
    private.start()
    first = pdf_bytes("first")
    started, body = private_upload(private, first, "application/pdf")
    assert private.request("POST", "/s3/complete-upload", body=body, content_type="application/json").status == 200
    asset_id = started["assetId"]
    private.stop()

    private.start(ASSETD_FAULT=point)
    second = png_bytes()
    _, body = private_upload(private, second, "image/png", asset_id)
    assert private.request("POST", "/s3/complete-upload", body=body, content_type="application/json") is None
    private.process.wait(timeout=10)

    private.start()  # the reconciler finishes the switch at start-up
    # (Thumbnails come and go from their own queue: not what this test is about.)
    wait_until("the switch to finish", lambda: [k for k in private.keys() if "/thumbnails/" not in k] == [
        f"1/digital_assets/{asset_id}.png", f"1/versions/{asset_id}/v1.pdf"])
    # The switch deletes its stale keys, then records itself: the keys can settle a moment
    # before the record does (seen on a loaded host), so wait for the record as well.
    asset = lambda: private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json()["asset"]
    record = wait_until("the switch to be recorded", lambda: (lambda r: r if [v["version"] for v in r["versions"]] == [1, 2] else None)(asset()))
    assert record["key"] == f"1/digital_assets/{asset_id}.png"
    stored = private.s3.get_object(Bucket=private.bucket, Key=f"1/versions/{asset_id}/v1.pdf")["Body"].read()
    assert stored == first
    assert private.s3.get_object(Bucket=private.bucket, Key=f"1/digital_assets/{asset_id}.png")["Body"].read() == second


@pytest.mark.s3_wiring
@pytest.mark.skipif(s3_server_pid() is None, reason="this stack did not start its S3 server (external mode): it cannot stop it")
def test_a_delete_while_s3_hangs_is_finished_by_a_retry(alice, s3, bucket):
    started, _ = upload(alice, pdf_bytes("x"), "application/pdf")
    asset_id = started["assetId"]
    upload(alice, pdf_bytes("y"), "application/pdf", asset_id)
    pid = s3_server_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        r = alice.delete("/s3/delete", workspaceId=1, assetId=asset_id)
        assert r.status_code in (502, 503), r.text
        assert r.headers["Content-Type"].startswith("application/json")
        assert time.monotonic() - began < 65
        # Meanwhile the asset answers 404: its delete has begun.
        assert alice.get(f"/api/assets/{asset_id}", workspaceId=1).status_code == 404
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:
        r = alice.delete("/s3/delete", workspaceId=1, assetId=asset_id)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.json() == {"success": True}
    assert keys_of(s3, bucket, asset_id, thumbnails=True) == []


def test_new_versions_racing_deletes_leave_no_key(alice, s3, bucket):
    """A 20 MB direct upload of a new version, and a DELETE of its asset 0-300 ms later, 20
    times: whichever wins, nothing stays under the asset's keys (a version's bytes that
    landed after the delete used to stay under its versions prefix for ever)."""
    import random
    import threading
    from conftest import CERTIFICATE
    rng = random.Random(17)
    big = pdf_bytes("v2") + os.urandom(20 * 1000 * 1000)
    ids, outcomes = [], []
    for _ in range(20):
        r = requests.post(alice.base + "/api/assets/upload", params={"workspaceId": 1},
                          files={"file": ("v1.pdf", pdf_bytes("v1"), "application/octet-stream")},
                          headers=alice.headers(), timeout=60, verify=CERTIFICATE)
        assert r.status_code == 200, r.text
        asset_id = r.json()["asset"]["id"]
        ids.append(asset_id)
        answer = {}

        def new_version():
            answer["r"] = requests.post(alice.base + "/api/assets/upload", params={"workspaceId": 1, "assetId": asset_id},
                                        files={"file": ("v2.pdf", big, "application/octet-stream")},
                                        headers=alice.headers(), timeout=120, verify=CERTIFICATE)

        thread = threading.Thread(target=new_version)
        thread.start()
        time.sleep(rng.uniform(0, 0.3))
        deleted = alice.delete("/s3/delete", workspaceId=1, assetId=asset_id)
        thread.join(150)
        assert not thread.is_alive()
        # A delete that finds the asset held by the version's switch is told to retry.
        while deleted.status_code == 409:
            time.sleep(float(deleted.headers.get("Retry-After", "1")))
            deleted = alice.delete("/s3/delete", workspaceId=1, assetId=asset_id)
        assert deleted.status_code == 200, deleted.text
        assert answer["r"].status_code in (200, 404, 409), answer["r"].text
        outcomes.append(answer["r"].status_code)
    for asset_id in ids:
        assert keys_of(s3, bucket, asset_id) == [], (asset_id, outcomes)


def test_a_polyglot_named_html_downloads_as_its_detected_type(alice):
    """A PNG sent as `x.html` (text/html) is stored as image/png; its download is served as
    image/png and named `x.png`, so a browser never renders it as a page."""
    from conftest import CERTIFICATE
    r = requests.post(alice.base + "/api/assets/upload", params={"workspaceId": 1},
                      files={"file": ("x.html", png_bytes(), "text/html")}, headers=alice.headers(), timeout=60, verify=CERTIFICATE)
    assert r.status_code == 200, r.text
    asset = r.json()["asset"]
    assert asset["fileType"] == "image/png"
    url = alice.get("/s3/download-url", workspaceId=1, assetId=asset["id"], disposition="attachment").json()["url"]
    assert "response-content-type=image%2Fpng" in url
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200
    if os.environ.get("ASSETD_TEST_S3_STRICT") == "1":  # moto ignores the response-* overrides
        assert answer.headers["Content-Type"] == "image/png"
        assert answer.headers["Content-Disposition"].endswith("filename*=UTF-8''x.png")
