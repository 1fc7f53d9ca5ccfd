"""The browser multipart flow end to end: nginx (TLS) -> FastCGI -> assetd -> S3."""
import os
import time

import pytest
import requests

from conftest import CERTIFICATE, assert_json_error, put_part, start_upload, upload_whole, as_jpeg

MiB = 1024 * 1024


@pytest.mark.s3_wiring
def test_real_jpeg_in_three_parts_is_byte_identical(alice, big_jpeg, s3, bucket):
    started, completed = upload_whole(alice, big_jpeg)
    assert started["partSize"] == 5 * MiB
    key = started["key"]
    assert key == f"1/digital_assets/{started['assetId']}.jpg"
    assert completed["success"] is True
    assert completed["key"] == key
    assert completed["etag"].strip('"').endswith("-3")

    r = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"])
    assert r.status_code == 200
    assert r.json()["expiresIn"] == 3600
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in r.json()["url"]
    downloaded = requests.get(r.json()["url"], timeout=60)
    assert downloaded.status_code == 200
    assert downloaded.content == big_jpeg

    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"
    assert head["ContentLength"] == len(big_jpeg)
    if os.environ.get("ASSETD_TEST_S3_STRICT") == "1":
        # moto's HTTP server drops every header with an underscore (x-amz-meta-workspace_id),
        # boto3's own included; Ceph RGW keeps them and reads them back with dashes.
        metadata = {k.replace("-", "_"): v for k, v in head["Metadata"].items()}
        assert metadata == {"workspace_id": "1", "asset_id": started["assetId"]}

    record = alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]
    assert record["status"] == "ready"
    assert record["size"] == len(big_jpeg)
    assert record["key"] == key
    assert record["fileName"] == "photo.jpg"
    assert record["id"] == started["assetId"] and record["workspaceId"] == "1"


def test_part_size_for_large_files(alice):
    r = alice.get("/s3/start-upload", workspaceId=1, fileType="video/mp4", fileSize=100 * 1024 * MiB)
    assert r.status_code == 200
    # 100 GiB in 10,000 parts needs 10.24 MiB a part: 11 MiB in whole MiB.
    assert r.json()["partSize"] == 11 * MiB
    assert r.json()["key"].endswith(".mp4")
    assert_json_error(alice.get("/s3/start-upload", workspaceId=1, fileType="video/mp4", fileSize=5 * 1024**4 + 1), 413)


@pytest.mark.s3_wiring
def test_list_parts_batch_presign_abort_then_complete_is_409(alice, s3, bucket):
    started = start_upload(alice, fileSize=11 * MiB)
    ids = dict(workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"])
    urls = alice.get("/s3/get-upload-urls", partNumbers="1-3,5", **ids)
    assert urls.status_code == 200
    numbers = [u["partNumber"] for u in urls.json()["urls"]]
    assert numbers == [1, 2, 3, 5]
    etag = put_part(urls.json()["urls"][0]["url"], b"a" * (5 * MiB))

    parts = alice.get("/s3/list-parts", workspaceId=1, assetId=started["assetId"], uploadId=started["uploadId"])
    assert parts.status_code == 200
    assert parts.json()["parts"] == [{"PartNumber": 1, "ETag": etag, "Size": 5 * MiB}]

    body = {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1}
    assert alice.post("/s3/abort-upload", body).json() == {"success": True}
    assert alice.post("/s3/abort-upload", body).json() == {"success": True}  # idempotent
    complete = alice.post("/s3/complete-upload", dict(body, parts=[{"ETag": etag, "PartNumber": 1}]))
    assert_json_error(complete, 409)
    assert_json_error(alice.get("/s3/get-upload-url", PartNumber=2, **ids), 409)
    record = alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]
    assert record["status"] == "aborted"
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert started["uploadId"] not in [u["UploadId"] for u in listed]


def test_list_parts_names_its_uploadId(alice):
    """CONTRACT.md's list-parts takes `uploadId`; get-upload-url keeps S3's `UploadId`."""
    started = start_upload(alice)
    ids = dict(workspaceId=1, assetId=started["assetId"])
    assert assert_json_error(alice.get("/s3/list-parts", **ids), 400) == "uploadId is required."
    assert assert_json_error(alice.get("/s3/list-parts", uploadId="a b", **ids), 400) == "uploadId is not a valid upload id."
    assert assert_json_error(alice.get("/s3/get-upload-url", PartNumber=1, **ids), 400) == "UploadId is required."


def test_a_file_shorter_than_declared_is_413_and_deleted(alice, s3, bucket):
    """CONTRACT.md: the size against the declared fileSize, "415 or 413, and the object deleted"."""
    data = as_jpeg(b"x" * 1000)
    started = start_upload(alice, fileSize=len(data) + 5000)
    url = alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=started["assetId"],
                    UploadId=started["uploadId"]).json()["url"]
    r = alice.post("/s3/complete-upload", {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                                           "parts": [{"ETag": put_part(url, data), "PartNumber": 1}]})
    error = assert_json_error(r, 413)
    assert f"{len(data)} bytes" in error and f"fileSize of {len(data) + 5000}" in error, error
    assert s3.list_objects_v2(Bucket=bucket, Prefix=started["key"]).get("KeyCount", 0) == 0
    assert alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]["status"] == "rejected"

def test_complete_retried_after_success_is_200_with_same_result(alice):
    data = as_jpeg(b"x" * (6 * MiB))
    started, first = upload_whole(alice, data)
    ask = lambda: alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"])
    parts = ask()
    if parts.status_code == 200 and int(os.environ.get("ASSETD_DEV_INSTANCES", "1")) > 1:
        # Several hosts: the host that did not complete evicts the upload from its cache when
        # the NOTIFY arrives, milliseconds later (docs/OPERATIONS.md, "Several hosts"); on a
        # loaded machine that can be after this request. Within 2 s, as test_multihost asks.
        deadline = time.monotonic() + 2
        while parts.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            parts = ask()
    assert_json_error(parts, 409)  # completed uploads hand out no more URLs
    body = {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1}
    # The same parts again, ETags given unquoted this time: the same answer.
    import hashlib
    etags = ['"%s"' % hashlib.md5(data[:5 * MiB]).hexdigest(), hashlib.md5(data[5 * MiB:]).hexdigest()]
    again = alice.post("/s3/complete-upload", dict(body, parts=[{"ETag": etags[0], "PartNumber": 1}, {"ETag": etags[1], "PartNumber": 2}]))
    assert again.status_code == 200, again.text
    assert again.json() == first
    other = alice.post("/s3/complete-upload", dict(body, parts=[{"ETag": etags[0], "PartNumber": 1}]))
    assert_json_error(other, 409)


def test_complete_checks_parts(alice):
    started = start_upload(alice)
    body = {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1}
    for parts in ([], [{"ETag": "a", "PartNumber": 2}, {"ETag": "b", "PartNumber": 1}],
                  [{"ETag": "a", "PartNumber": 1}, {"ETag": "a", "PartNumber": 1}],
                  [{"ETag": "a", "PartNumber": 0}], [{"ETag": "a", "PartNumber": 10001}],
                  [{"ETag": "a", "PartNumber": 1.5}], [{"PartNumber": 1}], "parts", None):
        message = assert_json_error(alice.post("/s3/complete-upload", dict(body, parts=parts)), 400)
        assert "parts" in message


@pytest.mark.s3_wiring
def test_delete_removes_object_and_is_idempotent(alice, s3, bucket):
    started, _ = upload_whole(alice, as_jpeg(b"y" * 1000))
    key = started["key"]
    s3.head_object(Bucket=bucket, Key=key)
    assert alice.delete("/s3/delete", workspaceId=1, assetId=started["assetId"]).json() == {"success": True}
    assert alice.delete("/s3/delete", workspaceId=1, assetId=started["assetId"]).json() == {"success": True}
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
    assert_json_error(alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"]), 404)
    assert_json_error(alice.get(f"/api/assets/{started['assetId']}", workspaceId=1), 404)


def test_list_assets_pages_newest_first(base_url, secret):
    from conftest import Client, make_token
    client = Client(base_url, make_token(secret, "lister", [77]))
    made = [upload_whole(client, as_jpeg(b"z" * 100), workspace=77)[0]["assetId"] for _ in range(3)]
    page = client.get("/api/assets", workspaceId=77, limit=2).json()
    assert [a["id"] for a in page["assets"]] == [made[2], made[1]]
    rest = client.get("/api/assets", workspaceId=77, limit=2, cursor=page["next"]).json()
    assert [a["id"] for a in rest["assets"]] == [made[0]]
    assert rest["next"] is None


@pytest.mark.s3_wiring
def test_health_and_cors_preflight(base_url):
    r = requests.get(base_url + "/healthz", verify=CERTIFICATE, timeout=10)
    assert r.status_code == 200 and r.json() == {"ok": True}
    pre = requests.options(base_url + "/s3/start-upload", verify=CERTIFICATE, timeout=10,
                           headers={"Origin": "https://app.example.test", "Access-Control-Request-Method": "GET",
                                    "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204
    # The dev stack allows any origin as "*", without the credentials flag (bearer tokens).
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in pre.headers
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
