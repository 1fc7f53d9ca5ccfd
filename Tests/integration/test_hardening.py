"""Hostile input and S3 outages through the real stack: each costs little, is answered as
JSON, and leaves nothing behind."""
import concurrent.futures
import json
import os
import signal
import time

import pytest
import requests

from conftest import CERTIFICATE, Client, assert_json_error, start_upload

MiB = 1024 * 1024


def asset_count(client, workspace=1):
    total, cursor = 0, None
    while True:
        params = {"workspaceId": workspace, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/assets", **params).json()
        total += len(body["assets"])
        cursor = body["next"]
        if not cursor:
            return total


def test_head_on_start_upload_is_405_and_creates_nothing(alice, base_url):
    before = asset_count(alice)
    r = alice.session.head(base_url + "/s3/start-upload", params={"workspaceId": 1, "fileType": "image/jpeg"},
                           headers=alice.headers(), verify=alice.verify, timeout=10)
    assert r.status_code == 405
    assert "GET" in r.headers.get("Allow", "")
    assert asset_count(alice) == before
    # A GET without side effects answers HEAD like GET, with no body.
    r = alice.session.head(base_url + "/api/assets", params={"workspaceId": 1}, headers=alice.headers(),
                           verify=alice.verify, timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_a_large_upload_without_a_token_is_refused_before_its_body(base_url):
    body = b"\0" * (24 * MiB)
    started = time.monotonic()
    r = requests.post(base_url + "/api/assets/upload?workspaceId=1", data=body, verify=CERTIFICATE, timeout=60,
                      headers={"Content-Type": "multipart/form-data; boundary=x", "Origin": "https://app.example.test"})
    elapsed = time.monotonic() - started
    message = assert_json_error(r, 401)
    assert "Authorization" in message or "token" in message
    assert elapsed < 10, f"the refusal took {elapsed:.1f} s"


def test_an_upload_for_a_foreign_workspace_is_refused_before_its_body(mallory, base_url):
    r = requests.post(base_url + "/api/assets/upload?workspaceId=1", data=b"\0" * (4 * MiB), verify=CERTIFICATE,
                      timeout=60, headers=mallory.headers({"Content-Type": "multipart/form-data; boundary=x"}))
    assert "workspace 1" in assert_json_error(r, 403)


def test_a_handler_that_answers_without_reading_the_body_is_not_a_502(alice, base_url):
    """The direct upload refuses a body that is not multipart/form-data before reading a byte
    of it: nginx must relay that 400, not turn the unread body into a 502."""
    for size in (0, 100, 3 * MiB, 20 * MiB):
        r = requests.post(base_url + "/api/assets/upload?workspaceId=1", data=b"x" * size, verify=CERTIFICATE,
                          timeout=60, headers=alice.headers({"Content-Type": "application/octet-stream"}))
        assert "multipart/form-data" in assert_json_error(r, 400), size
    # A JSON route refusing an over-limit Content-Length without reading it.
    r = alice.post("/s3/complete-upload", data=b" " * (MiB - 10) + b"{}")
    assert r.status_code in (400, 413), r.text


def test_a_megabyte_of_distinct_json_keys_is_refused_quickly(alice, base_url):
    members = []
    size, i = 2, 0
    while True:
        member = f'"k{i}":{i}'
        if size + len(member) + 1 > MiB - 64:
            break
        members.append(member)
        size += len(member) + 1
        i += 1
    body = ("{" + ",".join(members) + "}").encode()
    assert len(body) <= MiB

    def post():
        started = time.monotonic()
        r = alice.post("/s3/complete-upload", data=body)
        return r, time.monotonic() - started

    r, elapsed = post()
    assert "workspaceId" in assert_json_error(r, 400)
    assert elapsed < 2, f"{len(members)} keys took {elapsed:.2f} s"
    # Eight at once leave the liveness probe answering at once.
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(post) for _ in range(8)]
        time.sleep(0.05)
        started = time.monotonic()
        health = requests.get(base_url + "/healthz", verify=CERTIFICATE, timeout=10)
        health_time = time.monotonic() - started
        results = [f.result(timeout=60) for f in futures]
    assert health.status_code == 200 and health_time < 1, health_time
    assert all(r.status_code == 400 for r, _ in results)


@pytest.mark.s3_wiring
def test_readiness_names_no_bucket(base_url, bucket):
    r = requests.get(base_url + "/readyz", verify=CERTIFICATE, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "database": True, "s3": True}
    assert bucket not in r.text
    live = requests.get(base_url + "/healthz", verify=CERTIFICATE, timeout=10)
    assert live.json() == {"ok": True} and bucket not in live.text


def s3_server_pid():
    pids = os.path.join(os.environ.get("ASSETD_STATE_DIR", "state"), "pids")
    for name in ("s3", "ceph-rgw"):
        path = os.path.join(pids, f"{name}.pid")
        if os.path.exists(path):
            return int(open(path).read().strip())
    return None


@pytest.mark.s3_wiring
@pytest.mark.skipif(s3_server_pid() is None, reason="this stack did not start its S3 server (external mode): it cannot stop it")
def test_a_hung_s3_server_costs_bounded_time_and_spares_the_routes_that_need_no_s3(alice):
    pending = start_upload(alice)
    presign = dict(workspaceId=1, assetId=pending["assetId"], UploadId=pending["uploadId"], PartNumber=3)
    assert alice.get("/s3/get-upload-url", **presign).status_code == 200
    pid = s3_server_pid()
    answers = []
    os.kill(pid, signal.SIGSTOP)
    try:
        def s3_bound(i):
            started = time.monotonic()
            r = Client(alice.base, alice.token).get("/s3/start-upload", workspaceId=1, fileType="image/png")
            return r.status_code, r.headers.get("Content-Type", ""), time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(41) as pool:
            futures = [pool.submit(s3_bound, i) for i in range(40)]
            time.sleep(0.3)
            started = time.monotonic()
            r = alice.get("/s3/get-upload-url", **presign)
            presign_time = time.monotonic() - started
            assert r.status_code == 200, r.text
            assert presign_time < 1, f"a part presign took {presign_time:.2f} s while S3 hung"
            started = time.monotonic()
            assert alice.get("/api/assets", workspaceId=1, limit=5).status_code == 200
            assert time.monotonic() - started < 1
            answers = [f.result(timeout=90) for f in futures]
    finally:
        os.kill(pid, signal.SIGCONT)
    statuses = sorted({status for status, _, _ in answers})
    assert set(statuses) <= {502, 503}, statuses
    assert all(kind.startswith("application/json") for _, kind, _ in answers)
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < 65, f"an S3-bound request took {slowest:.1f} s"
    # Recovery: once S3 continues (and the breaker's pause ends), S3-bound routes work again.
    deadline = time.monotonic() + 30
    while True:
        r = alice.get("/s3/start-upload", workspaceId=1, fileType="image/png")
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 200, r.text
    print(f"hung S3: statuses {statuses}, slowest {slowest:.1f} s, presign {presign_time * 1000:.0f} ms")
