"""Crash recovery: assetd killed (SIGKILL, as kill -9) at the worst moments, then started
again; the reconciler must bring the records and the bucket back into agreement.

Each test runs a private assetd (its own socket, database and bucket) whose ASSETD_FAULT
setting makes it SIGKILL itself at a named point of a request."""
import io
import time

import pytest
from PIL import Image

from private_assetd import form, private, wait_until  # noqa: F401 (private is a fixture)


def png_bytes(seed=3):
    out = io.BytesIO()
    Image.new("RGB", (64 + seed, 48), (seed * 40 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def asset_status(private, asset_id):
    r = private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1")
    return r.json()["asset"]["status"] if r.status == 200 else r.status


def test_a_direct_upload_killed_after_its_object_landed_becomes_ready(private):
    data = png_bytes()
    body, content_type = form(data)
    private.start(ASSETD_FAULT="direct-upload-stored")
    assert private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type) is None, "assetd did not die"
    assert private.process.wait(timeout=10) == -9
    assert private.keys() == ["1/digital_assets/1.png"], "the object should have landed before the kill"

    private.start()  # the reconciler's first pass runs at start-up
    wait_until("the asset to become ready", lambda: asset_status(private, 1) == "ready")
    wait_until("the reconciler's log line", lambda: "reconciler: a direct upload left pending has its whole object; marked ready" in private.log())
    r = private.request("GET", "/api/assets/1", "workspaceId=1")
    assert r.json()["asset"]["size"] == len(data)


def test_a_direct_upload_killed_before_its_object_is_discarded(private):
    body, content_type = form(png_bytes(5))
    private.start(ASSETD_FAULT="direct-upload-recorded")
    assert private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type) is None
    private.process.wait(timeout=10)
    private.start()
    wait_until("the record to be discarded", lambda: asset_status(private, 1) == 404)
    assert private.keys() == []
    wait_until("the reconciler's log line", lambda: "has no complete object; discarded" in private.log())


def test_a_delete_killed_midway_is_finished(private):
    private.start()
    body, content_type = form(png_bytes(7))
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r.status == 200, r.body
    asset_id = r.json()["asset"]["id"]
    private.stop()

    private.start(ASSETD_FAULT="delete-begun")
    assert private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={asset_id}") is None
    private.process.wait(timeout=10)
    # The thumbnail may have been made before the stop; the finished delete removes it too.
    assert private.keys() in (["1/digital_assets/1.png"], ["1/digital_assets/1.png", "1/thumbnails/1.jpg"]), \
        "the kill came before any S3 call"

    private.start()
    wait_until("the delete to be finished", lambda: private.keys() == [])
    assert asset_status(private, asset_id) == 404
    wait_until("the reconciler's log line", lambda: "reconciler: finished a delete that had stopped midway" in private.log())
    # A repeated DELETE is still a success.
    assert private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={asset_id}").status == 200


def test_a_multipart_upload_past_its_ttl_is_aborted_and_expired(private):
    private.start(ASSETD_PENDING_UPLOAD_TTL=2, ASSETD_RECONCILE_INTERVAL=1)
    r = private.request("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg&fileSize=6000000")
    assert r.status == 200, r.body
    started = r.json()
    assert len(private.multipart_uploads()) == 1
    wait_until("the upload to expire", lambda: asset_status(private, started["assetId"]) == "expired", seconds=30)
    assert private.multipart_uploads() == []
    r = private.request("GET", "/s3/get-upload-url",
                        f"workspaceId=1&assetId={started['assetId']}&UploadId={started['uploadId']}&PartNumber=1")
    assert r.status == 409 and "expired" in r.json()["error"]
    wait_until("the reconciler's log line", lambda: "outlived ASSETD_PENDING_UPLOAD_TTL; aborted and marked expired" in private.log())


def test_a_complete_whose_answer_was_lost_is_recovered(private):
    """S3 completed the upload, but assetd died before it recorded it: the client's retry
    meets NoSuchUpload, and assetd recognises the object by its multipart ETag."""
    private.start(ASSETD_FAULT="complete-s3-done")
    r = private.request("GET", "/s3/start-upload", "workspaceId=1&fileType=image/png")
    started = r.json()
    data = png_bytes(9)
    part = private.s3.upload_part(Bucket=private.bucket, Key=started["key"], UploadId=started["uploadId"],
                                  PartNumber=1, Body=data)
    import json
    complete = json.dumps({"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                           "parts": [{"ETag": part["ETag"], "PartNumber": 1}]}).encode()
    assert private.request("POST", "/s3/complete-upload", body=complete, content_type="application/json") is None
    private.process.wait(timeout=10)
    assert private.multipart_uploads() == [], "S3 completed it before the kill"

    private.start()
    r = private.request("POST", "/s3/complete-upload", body=complete, content_type="application/json")
    assert r.status == 200, r.body
    assert r.json()["key"] == started["key"]
    assert asset_status(private, started["assetId"]) == "ready"
    # AWS (and moto) may answer a second Complete of a finished upload with its result;
    # others (Ceph) say NoSuchUpload, and assetd then recognises the object by its
    # multipart ETag ("complete-upload recovered" in its log; HardeningTests covers both).
