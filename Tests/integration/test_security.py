"""An attacker at every route: other tenants' ids, traversal, forged tokens, bad input.
Every answer is a 4xx JSON error, and the victim's object and record survive."""
import time

import pytest

from conftest import Client, assert_json_error, make_token, put_part, start_upload, upload_whole, as_jpeg

MiB = 1024 * 1024
BAD_IDS = ["../1", "1/../2", "..%2f1", "1 ", " 1", "+1", "-1", "1e3", "0x1", "01", "1.0", "0",
           "99999999999999999999", "9223372036854775808", "1;2", "", "１"]


@pytest.fixture(scope="module")
def victim(alice):
    """A completed asset and a pending upload in workspace 1."""
    done, _ = upload_whole(alice, as_jpeg(b"victim-bytes" * 1000))
    pending = start_upload(alice, fileSize=6 * MiB)
    url = alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=pending["assetId"],
                    UploadId=pending["uploadId"]).json()["url"]
    etag = put_part(url, b"p" * (5 * MiB))
    return {"done": done, "pending": pending, "etag": etag}


@pytest.fixture(scope="module")
def mallory_asset(mallory):
    return start_upload(mallory, workspace=2)


def check_victim_intact(alice, s3, bucket, victim):
    s3.head_object(Bucket=bucket, Key=victim["done"]["key"])
    record = alice.get(f"/api/assets/{victim['done']['assetId']}", workspaceId=1).json()["asset"]
    assert record["status"] == "ready"
    parts = alice.get("/s3/list-parts", workspaceId=1, assetId=victim["pending"]["assetId"],
                      uploadId=victim["pending"]["uploadId"])
    assert parts.status_code == 200 and len(parts.json()["parts"]) == 1


def test_other_workspace_in_query_is_403_everywhere(mallory, victim):
    d, p = victim["done"], victim["pending"]
    calls = [
        mallory.get("/s3/start-upload", workspaceId=1, fileType="image/png"),
        mallory.get("/s3/get-upload-url", workspaceId=1, assetId=p["assetId"], UploadId=p["uploadId"], PartNumber=1),
        mallory.get("/s3/get-upload-urls", workspaceId=1, assetId=p["assetId"], UploadId=p["uploadId"], partNumbers="1-2"),
        mallory.get("/s3/list-parts", workspaceId=1, assetId=p["assetId"], uploadId=p["uploadId"]),
        mallory.post("/s3/complete-upload", {"workspaceId": 1, "assetId": p["assetId"], "uploadId": p["uploadId"],
                                             "parts": [{"ETag": victim["etag"], "PartNumber": 1}]}),
        mallory.post("/s3/abort-upload", {"workspaceId": 1, "assetId": p["assetId"], "uploadId": p["uploadId"]}),
        mallory.get("/s3/download-url", workspaceId=1, assetId=d["assetId"]),
        mallory.delete("/s3/delete", workspaceId=1, assetId=d["assetId"]),
        mallory.get(f"/api/assets/{d['assetId']}", workspaceId=1),
        mallory.get("/api/assets", workspaceId=1),
    ]
    for response in calls:
        assert_json_error(response, 403)


def test_victim_ids_under_own_workspace_are_404(mallory, mallory_asset, victim, alice, s3, bucket):
    d, p = victim["done"], victim["pending"]
    mine = mallory_asset
    calls = [
        # The victim's asset id under the attacker's own workspace.
        mallory.get("/s3/download-url", workspaceId=2, assetId=d["assetId"]),
        mallory.delete("/s3/delete", workspaceId=2, assetId=d["assetId"]),
        mallory.get(f"/api/assets/{d['assetId']}", workspaceId=2),
        # The victim's upload id with the attacker's own asset.
        mallory.get("/s3/get-upload-url", workspaceId=2, assetId=mine["assetId"], UploadId=p["uploadId"], PartNumber=1),
        mallory.get("/s3/get-upload-urls", workspaceId=2, assetId=mine["assetId"], UploadId=p["uploadId"], partNumbers="1"),
        mallory.get("/s3/list-parts", workspaceId=2, assetId=mine["assetId"], uploadId=p["uploadId"]),
        mallory.post("/s3/complete-upload", {"workspaceId": 2, "assetId": mine["assetId"], "uploadId": p["uploadId"],
                                             "parts": [{"ETag": victim["etag"], "PartNumber": 1}]}),
        mallory.post("/s3/abort-upload", {"workspaceId": 2, "assetId": mine["assetId"], "uploadId": p["uploadId"]}),
        # The victim's asset with the attacker's upload id, and both of the victim's ids.
        mallory.get("/s3/get-upload-url", workspaceId=2, assetId=p["assetId"], UploadId=mine["uploadId"], PartNumber=1),
        mallory.post("/s3/abort-upload", {"workspaceId": 2, "assetId": p["assetId"], "uploadId": p["uploadId"]}),
    ]
    for response in calls:
        assert_json_error(response, 404)
    check_victim_intact(alice, s3, bucket, victim)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_malformed_ids_are_400_on_every_route(alice, victim, bad):
    p = victim["pending"]
    calls = [
        alice.get("/s3/start-upload", workspaceId=bad, fileType="image/png"),
        alice.get("/s3/get-upload-url", workspaceId=1, assetId=bad, UploadId=p["uploadId"], PartNumber=1),
        alice.get("/s3/get-upload-url", workspaceId=bad, assetId=p["assetId"], UploadId=p["uploadId"], PartNumber=1),
        alice.get("/s3/list-parts", workspaceId=1, assetId=bad, uploadId=p["uploadId"]),
        alice.get("/s3/download-url", workspaceId=1, assetId=bad),
        alice.delete("/s3/delete", workspaceId=1, assetId=bad),
        alice.delete("/s3/delete", workspaceId=bad, assetId=victim["done"]["assetId"]),
        alice.post("/s3/complete-upload", {"workspaceId": 1, "assetId": bad, "uploadId": p["uploadId"],
                                           "parts": [{"ETag": "e", "PartNumber": 1}]}),
        alice.post("/s3/abort-upload", {"workspaceId": bad, "assetId": p["assetId"], "uploadId": p["uploadId"]}),
        alice.get("/api/assets", workspaceId=bad),
    ]
    for response in calls:
        assert_json_error(response, 400)


def test_traversal_in_upload_id_and_path(alice, victim, s3, bucket):
    p = victim["pending"]
    for upload_id in ["../x", "a b", "x\ny", "%00"]:
        r = alice.get("/s3/get-upload-url", workspaceId=1, assetId=p["assetId"], UploadId=upload_id, PartNumber=1)
        assert r.status_code in (400, 404)
        assert_json_error(r, r.status_code)
    r = alice.session.get(alice.base + "/api/assets/..%2F1?workspaceId=1", headers=alice.headers(), timeout=10, verify=alice.verify)
    assert r.status_code in (400, 404)
    check_victim_intact(alice, s3, bucket, victim)


def test_json_ids_must_be_integers(alice, victim):
    p = victim["pending"]
    for asset_id in [1.5, -1, True, "1e3", [1], {"a": 1}, None, "12abc"]:
        r = alice.post("/s3/abort-upload", {"workspaceId": 1, "assetId": asset_id, "uploadId": p["uploadId"]})
        assert_json_error(r, 400)
    r = alice.post("/s3/abort-upload", data='{"workspaceId": 1e0, "assetId": 1, "uploadId": "x"}')
    assert_json_error(r, 400)


def test_forged_and_expired_tokens_are_401(base_url, secret, victim):
    d = victim["done"]
    tokens = {
        "wrong secret": make_token("x" * 40, "alice", [1]),
        "expired": make_token(secret, "alice", [1], ttl=-10),
        "alg none": make_token(secret, "alice", [1], alg="none"),
        "alg none, signature kept": make_token(secret, "alice", [1], alg="none") + "abc",
        "HS512": make_token(secret, "alice", [1], alg="HS512"),
        "RS256 header": make_token(secret, "alice", [1], header={"alg": "RS256", "typ": "JWT"}),
        "no exp": make_token(secret, "alice", [1], drop=("exp",)),
        "nbf in the future": make_token(secret, "alice", [1], claims={"nbf": int(time.time()) + 3600}),
        "workspaces as strings": make_token(secret, "alice", ["1"]),
        "no sub": make_token(secret, drop=("sub",)),
        "garbage": "not-a-token",
        "empty": "",
    }
    for name, token in tokens.items():
        response = Client(base_url, token).get("/s3/download-url", workspaceId=1, assetId=d["assetId"])
        assert response.status_code == 401, (name, response.status_code, response.text[:300])
        assert_json_error(response, 401)
    assert_json_error(Client(base_url, None).get("/s3/download-url", workspaceId=1, assetId=d["assetId"]), 401)
    basic = Client(base_url, None)
    basic.session.headers["Authorization"] = "Basic YWxpY2U6eA=="
    assert_json_error(basic.get("/api/assets", workspaceId=1), 401)


def test_ranges_and_types(alice, victim):
    p, d = victim["pending"], victim["done"]
    ids = dict(workspaceId=1, assetId=p["assetId"], UploadId=p["uploadId"])
    for number in ["0", "10001", "abc", "-1", "1.5", ""]:
        assert_json_error(alice.get("/s3/get-upload-url", PartNumber=number, **ids), 400)
    assert_json_error(alice.get("/s3/get-upload-url", **ids), 400)
    for spec in ["0-3", "1-101", "5-1", "1,,2", "a", "1-2-3", "9999-10001"]:
        assert_json_error(alice.get("/s3/get-upload-urls", partNumbers=spec, **ids), 400)
    assert alice.get("/s3/get-upload-urls", partNumbers="1-100", **ids).status_code == 200
    for expires in ["0", "604801", "-5", "1h"]:
        assert_json_error(alice.get("/s3/download-url", workspaceId=1, assetId=d["assetId"], expiresIn=expires), 400)
    ok = alice.get("/s3/download-url", workspaceId=1, assetId=d["assetId"], expiresIn=604800)
    assert ok.status_code == 200 and ok.json()["expiresIn"] == 604800
    assert "X-Amz-Expires=604800" in ok.json()["url"]
    assert_json_error(alice.get("/s3/download-url", workspaceId=1, assetId=d["assetId"], version=2), 404)
    assert_json_error(alice.get("/s3/start-upload", workspaceId=1, fileType="text/html"), 415)
    assert_json_error(alice.get("/s3/start-upload", workspaceId=1, fileType="image/svg+xml"), 415)
    assert_json_error(alice.get("/s3/start-upload", workspaceId=1), 400)
    assert_json_error(alice.get("/s3/start-upload", workspaceId=1, fileType="image/png", fileSize="-1"), 400)
    for limit in ["0", "201", "x"]:
        assert_json_error(alice.get("/api/assets", workspaceId=1, limit=limit), 400)


def test_malformed_and_oversized_json(alice, victim):
    for data in ["{", "[]", "null", '{"a":1,}', "\xff\xfe", '{"uploadId": "x"} trailing', ""]:
        assert_json_error(alice.post("/s3/complete-upload", data=data), 400)
    big = '{"pad": "' + "a" * (2 * MiB) + '"}'
    assert_json_error(alice.post("/s3/complete-upload", data=big), 413)


def test_file_name_is_a_label_not_a_path(alice):
    r = alice.get("/s3/start-upload", workspaceId=1, fileType="image/png", fileName="../../etc/passwd.png")
    assert r.status_code == 200
    started = r.json()
    assert started["key"] == f"1/digital_assets/{started['assetId']}.png"
    name = alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]["fileName"]
    assert name == "passwd.png"
    # A control character is refused, naming the field, rather than stored or dropped.
    r = alice.get("/s3/start-upload", workspaceId=1, fileType="image/png", fileName="passwd\u0000.png")
    assert "fileName" in assert_json_error(r, 400)


def test_unknown_route_and_method(alice):
    assert_json_error(alice.get("/s3/nope"), 404)
    assert_json_error(alice.get("/s3/complete-upload"), 405)


def test_victim_survives_everything(alice, s3, bucket, victim):
    check_victim_intact(alice, s3, bucket, victim)
