"""Per-part checksums (issue 20) against the real stack: part URLs signed with the part's
MD5 (content-md5 in X-Amz-SignedHeaders), real parts PUT to the real S3 server, and
complete-upload's checks of the ETags.

What the S3 server itself refuses differs: Ceph RGW checks both the signature and the
Content-MD5 (ASSETD_TEST_S3_STRICT=1), moto checks neither. Where moto stores what Ceph
refuses, the test goes on to show that assetd's complete-upload refuses it instead."""
import base64
import hashlib
import os
import tempfile
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from conftest import as_jpeg, assert_json_error, start_upload
from private_assetd import PrivateAssetd

MiB = 1024 * 1024
STRICT = os.environ.get("ASSETD_TEST_S3_STRICT") == "1"


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def two_parts(seed):
    """A JPEG-headed file of 5 MiB + 1000 bytes: two real parts, the first at S3's minimum."""
    body = hashlib.sha256(seed.encode()).digest() * (5 * MiB // 32 + 40)
    data = as_jpeg(body)[: 5 * MiB + 1000]
    return data, [data[:5 * MiB], data[5 * MiB:]]


def signed_urls(client, started, parts):
    r = client.get("/s3/get-upload-urls", workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"],
                   partNumbers=f"1-{len(parts)}", contentMD5=",".join(md5_b64(p) for p in parts))
    assert r.status_code == 200, r.text
    urls = [item["url"] for item in r.json()["urls"]]
    for url in urls:
        assert parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"] == ["content-md5;host"], url
    return urls


def put(url, data, md5=None):
    headers = {"Content-Type": "application/octet-stream"}
    if md5:
        headers["Content-MD5"] = md5
    return requests.put(url, data=data, headers=headers, timeout=120)


def complete(client, started, etags):
    return client.post("/s3/complete-upload", {
        "uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
        "parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]})


def multipart_etag(parts):
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def test_a_part_with_other_bytes_never_becomes_the_object(alice):
    """The URL is signed for part 2's MD5; other bytes PUT with that Content-MD5 are refused
    by the S3 server (BadDigest, on Ceph), or, where the server checks nothing (moto), by
    complete-upload (the part's ETag is not the MD5 signed for it). Then the right bytes
    go through, and the object is byte-identical with the ETag the parts add up to."""
    data, parts = two_parts("wrong-bytes")
    started = start_upload(alice, fileSize=len(data), fileName="checked.jpg")
    urls = signed_urls(alice, started, parts)
    etags = [put(urls[0], parts[0], md5_b64(parts[0]))]
    assert etags[0].status_code == 200, etags[0].text
    corrupted = bytes([parts[1][0] ^ 0xFF]) + parts[1][1:]
    wrong = put(urls[1], corrupted, md5_b64(parts[1]))
    if STRICT:
        assert wrong.status_code == 400, (wrong.status_code, wrong.text[:300])
        assert "<Code>BadDigest</Code>" in wrong.text, wrong.text[:300]
    else:
        # moto verifies no Content-MD5: it stores the corrupted part, whose ETag is the MD5
        # of what it got. assetd refuses to complete with it, before S3 builds anything.
        assert wrong.status_code == 200, wrong.text[:300]
        assert wrong.headers["ETag"].strip('"') == hashlib.md5(corrupted).hexdigest()
        error = assert_json_error(complete(alice, started, [etags[0].headers["ETag"], wrong.headers["ETag"]]), 400)
        assert error.startswith("parts[1].ETag: part 2 was presigned for the MD5 " + hashlib.md5(parts[1]).hexdigest()), error
    right = put(urls[1], parts[1], md5_b64(parts[1]))
    assert right.status_code == 200, right.text[:300]
    r = complete(alice, started, [etags[0].headers["ETag"], right.headers["ETag"]])
    assert r.status_code == 200, r.text
    assert r.json()["etag"].strip('"') == multipart_etag(parts)
    asset = alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]
    assert asset["status"] == "ready" and asset["etag"].strip('"') == multipart_etag(parts)
    url = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"]).json()["url"]
    assert requests.get(url, timeout=60).content == data


@pytest.mark.skipif(not STRICT, reason="moto checks no signature, so it takes a PUT without the signed Content-MD5; Ceph (ASSETD_TEST_S3_STRICT=1) refuses it")
def test_a_url_signed_with_an_md5_is_refused_without_that_header(alice):
    data, parts = two_parts("no-header")
    started = start_upload(alice, fileSize=len(data))
    urls = signed_urls(alice, started, parts)
    missing = put(urls[0], parts[0])
    assert missing.status_code == 403, (missing.status_code, missing.text[:300])
    assert "SignatureDoesNotMatch" in missing.text or "AccessDenied" in missing.text, missing.text[:300]
    # Another MD5 than the signed one (that of bytes the client would rather send): refused too.
    other = put(urls[0], parts[1], md5_b64(parts[1]))
    assert other.status_code == 403, (other.status_code, other.text[:300])
    assert put(urls[0], parts[0], md5_b64(parts[0])).status_code == 200


def test_complete_refuses_part_etags_that_do_not_add_up(alice):
    """Real parts PUT with their MD5s; complete-upload with ETags that are not the signed
    MD5s (swapped, made up, or a part submitted twice under two numbers) is a 400 naming the
    part, nothing is built, and the same upload completes with the true ETags."""
    data, parts = two_parts("add-up")
    started = start_upload(alice, fileSize=len(data))
    urls = signed_urls(alice, started, parts)
    etags = []
    for url, part in zip(urls, parts):
        r = put(url, part, md5_b64(part))
        assert r.status_code == 200, r.text[:300]
        etags.append(r.headers["ETag"])
    assert [e.strip('"') for e in etags] == [hashlib.md5(p).hexdigest() for p in parts]
    swapped = assert_json_error(complete(alice, started, [etags[1], etags[0]]), 400)
    assert swapped.startswith("parts[0].ETag: part 1 was presigned for the MD5"), swapped
    made_up = assert_json_error(complete(alice, started, [etags[0], '"' + "0" * 32 + '"']), 400)
    assert made_up.startswith("parts[1].ETag: part 2 was presigned for the MD5"), made_up
    assert alice.get(f"/api/assets/{started['assetId']}", workspaceId=1).json()["asset"]["status"] == "pending"
    r = complete(alice, started, etags)
    assert r.status_code == 200, r.text
    assert r.json()["etag"].strip('"') == multipart_etag(parts)


def test_content_md5_is_validated(alice):
    started = start_upload(alice)
    ids = dict(workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"])
    for bad in ("abc", hashlib.md5(b"x").hexdigest(), md5_b64(b"x").rstrip("="), md5_b64(b"x").replace("=", "A", 1) + "=",
                base64.b64encode(hashlib.sha1(b"x").digest()).decode()):
        error = assert_json_error(alice.get("/s3/get-upload-url", PartNumber=1, contentMD5=bad, **ids), 400)
        assert error.startswith("contentMD5 must be the base64 of a part's 16-byte MD5"), (bad, error)
    error = assert_json_error(alice.get("/s3/get-upload-urls", partNumbers="1-3", contentMD5=md5_b64(b"a") + "," + md5_b64(b"b"), **ids), 400)
    assert "contentMD5 must hold one MD5 for each of the 3 parts" in error
    # A raw + (not %2B) arrives as a space: refused, saying how to send it.
    query = f"PartNumber=1&workspaceId=1&assetId={started['assetId']}&UploadId={quote(started['uploadId'])}&contentMD5=ab+defghijklmnopqrstuvw=="
    error = assert_json_error(requests.get(f"{alice.base}/s3/get-upload-url?{query}", headers=alice.headers(), verify=alice.verify, timeout=30), 400)
    assert "%2B" in error, error
    # A valid one is signed in; without one (optional, the default) the URL signs host only.
    signed = alice.get("/s3/get-upload-url", PartNumber=1, contentMD5=md5_b64(b"part"), **ids).json()["url"]
    assert parse_qs(urlsplit(signed).query)["X-Amz-SignedHeaders"] == ["content-md5;host"]
    plain = alice.get("/s3/get-upload-url", PartNumber=1, **ids).json()["url"]
    assert parse_qs(urlsplit(plain).query)["X-Amz-SignedHeaders"] == ["host"]


def test_required_mode_refuses_a_part_url_without_content_md5():
    with tempfile.TemporaryDirectory() as workdir:
        instance = PrivateAssetd(workdir, ASSETD_THREADS=2, ASSETD_PART_CHECKSUM="required")
        try:
            instance.start()
            r = instance.request("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
            assert r.status == 200, r.body
            started = r.json()
            ids = f"workspaceId=1&assetId={started['assetId']}&UploadId={quote(started['uploadId'])}"
            refused = instance.request("GET", "/s3/get-upload-url", ids + "&PartNumber=1")
            assert refused.status == 400, refused.body
            assert refused.json()["error"].startswith("contentMD5 is required (ASSETD_PART_CHECKSUM=required)")
            batch = instance.request("GET", "/s3/get-upload-urls", ids + "&partNumbers=1-2")
            assert batch.status == 400 and "contentMD5" in batch.json()["error"], batch.body
            given = instance.request("GET", "/s3/get-upload-url", ids + "&PartNumber=1&contentMD5=" + quote(md5_b64(b"p"), safe=""))
            assert given.status == 200, given.body
            assert parse_qs(urlsplit(given.json()["url"]).query)["X-Amz-SignedHeaders"] == ["content-md5;host"]
        finally:
            instance.close()
