"""assetd's presigned URLs carry the signature botocore computes for the same request and time."""
import datetime
import os
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from conftest import start_upload, as_jpeg

# Every presigned URL names the S3 endpoint: the external-mode pass runs this file too.
pytestmark = pytest.mark.s3_wiring


def botocore_url(settings, operation, params, expires, when):
    client = boto3.client(
        "s3", endpoint_url=settings["AWS_ENDPOINT_URL_S3"], region_name=settings.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"], aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        return client.generate_presigned_url(operation, Params=params, ExpiresIn=expires)


def signature_and_time(url):
    query = parse_qs(urlsplit(url).query)
    when = datetime.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    return query["X-Amz-Signature"][0], when, query


PRESIGN_EXPIRES_DEFAULT = 3600  # ASSETD_PRESIGN_EXPIRES when the settings file does not set it


def part_url(client, started, number):
    r = client.get("/s3/get-upload-url", PartNumber=number, workspaceId=1, assetId=started["assetId"],
                   UploadId=started["uploadId"])
    assert r.status_code == 200, r.text
    return r.json()


def test_upload_part_url_matches_botocore(alice, settings):
    """A part URL is valid for the configured presign expiry, says so in expiresIn, and is
    signed as botocore signs that same request at that same time and expiry."""
    configured = int(settings.get("ASSETD_PRESIGN_EXPIRES", PRESIGN_EXPIRES_DEFAULT))
    started = start_upload(alice)
    answer = part_url(alice, started, 7)
    signature, when, query = signature_and_time(answer["url"])
    assert answer["expiresIn"] == configured
    assert query["X-Amz-Expires"] == [str(configured)]
    theirs = botocore_url(settings, "upload_part", {"Bucket": settings["AWS_BUCKET"], "Key": started["key"],
                                                    "UploadId": started["uploadId"], "PartNumber": 7},
                          configured, when)
    assert signature_and_time(theirs)[0] == signature
    assert urlsplit(theirs).path == urlsplit(answer["url"]).path


def test_download_url_matches_botocore(alice, settings):
    """A download URL is valid for the expiresIn that was asked, and signed as botocore signs it."""
    from conftest import upload_whole
    started, _ = upload_whole(alice, as_jpeg(b"sig" * 100))
    answer = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"], expiresIn=900).json()
    signature, when, query = signature_and_time(answer["url"])
    assert answer["expiresIn"] == 900
    assert query["X-Amz-Expires"] == ["900"]
    # Every download names the detected type (response-content-type), signed with the rest.
    theirs = botocore_url(settings, "get_object", {"Bucket": settings["AWS_BUCKET"], "Key": started["key"],
                                                   "ResponseContentType": "image/jpeg"}, 900, when)
    assert signature_and_time(theirs)[0] == signature


def test_the_expiry_is_signed(alice, settings):
    """Each expiresIn that is asked is the X-Amz-Expires of the URL and is covered by its
    signature: botocore signs the same request, at the same time, with the expiry assetd
    wrote, and gets assetd's signature; with any other expiry it gets another one. So a
    URL whose X-Amz-Expires was not the one signed would fail here."""
    from conftest import upload_whole
    started, _ = upload_whole(alice, as_jpeg(b"expiry" * 100))
    params = {"Bucket": settings["AWS_BUCKET"], "Key": started["key"], "ResponseContentType": "image/jpeg"}
    signatures = set()
    for asked in (60, 3600, 604800):
        answer = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"], expiresIn=asked).json()
        signature, when, query = signature_and_time(answer["url"])
        assert answer["expiresIn"] == asked
        assert query["X-Amz-Expires"] == [str(asked)]
        assert signature_and_time(botocore_url(settings, "get_object", params, asked, when))[0] == signature
        for other in (asked - 1, asked + 1):
            assert signature_and_time(botocore_url(settings, "get_object", params, other, when))[0] != signature, other
        signatures.add(signature)
    assert len(signatures) == 3


@pytest.mark.skipif(os.environ.get("ASSETD_TEST_S3_STRICT") != "1", reason="moto checks no signatures")
def test_a_tampered_signature_is_refused_by_the_server(alice):
    """On a server that checks signatures, one changed digit is a 403: the suite would
    catch a signing bug there."""
    from conftest import upload_whole
    started, _ = upload_whole(alice, as_jpeg(b"tamper" * 100))
    url = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"]).json()["url"]
    assert requests.get(url, timeout=30).status_code == 200
    head, signature = url.rsplit("X-Amz-Signature=", 1)
    flipped = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    assert requests.get(head + "X-Amz-Signature=" + flipped, timeout=30).status_code == 403
    # The expiry is signed: a shorter one with the same signature is refused too.
    assert "X-Amz-Expires=3600&" in url
    assert requests.get(url.replace("X-Amz-Expires=3600&", "X-Amz-Expires=3599&"), timeout=30).status_code == 403

    part = start_upload(alice)
    put_url = alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=part["assetId"],
                        UploadId=part["uploadId"]).json()["url"]
    head, signature = put_url.rsplit("X-Amz-Signature=", 1)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    r = requests.put(head + "X-Amz-Signature=" + flipped, data=b"x" * 100, timeout=30,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403


def test_upload_part_url_with_content_md5_matches_botocore(alice, settings):
    """A part URL asked for with contentMD5 signs content-md5 (X-Amz-SignedHeaders
    content-md5;host) exactly as botocore presigns upload_part with ContentMD5, at the same
    time; without it, botocore's signature differs."""
    import base64
    import hashlib

    configured = int(settings.get("ASSETD_PRESIGN_EXPIRES", PRESIGN_EXPIRES_DEFAULT))
    started = start_upload(alice)
    md5 = base64.b64encode(hashlib.md5(b"part four").digest()).decode()
    r = alice.get("/s3/get-upload-url", PartNumber=4, workspaceId=1, assetId=started["assetId"],
                  UploadId=started["uploadId"], contentMD5=md5)
    assert r.status_code == 200, r.text
    signature, when, query = signature_and_time(r.json()["url"])
    assert query["X-Amz-SignedHeaders"] == ["content-md5;host"]
    params = {"Bucket": settings["AWS_BUCKET"], "Key": started["key"], "UploadId": started["uploadId"], "PartNumber": 4}
    theirs = botocore_url(settings, "upload_part", {**params, "ContentMD5": md5}, configured, when)
    assert signature_and_time(theirs)[2]["X-Amz-SignedHeaders"] == ["content-md5;host"]
    assert signature_and_time(theirs)[0] == signature
    assert signature_and_time(botocore_url(settings, "upload_part", params, configured, when))[0] != signature
