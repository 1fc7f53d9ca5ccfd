"""assetd's presigned URLs carry the signature botocore computes for the same request and time."""
import datetime
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from conftest import start_upload


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


def test_upload_part_url_matches_botocore(alice, settings):
    started = start_upload(alice)
    ours = alice.get("/s3/get-upload-url", PartNumber=7, workspaceId=1, assetId=started["assetId"],
                     UploadId=started["uploadId"]).json()["url"]
    signature, when, query = signature_and_time(ours)
    theirs = botocore_url(settings, "upload_part", {"Bucket": settings["AWS_BUCKET"], "Key": started["key"],
                                                    "UploadId": started["uploadId"], "PartNumber": 7},
                          int(query["X-Amz-Expires"][0]), when)
    assert signature_and_time(theirs)[0] == signature
    assert urlsplit(theirs).path == urlsplit(ours).path


def test_download_url_matches_botocore(alice, settings):
    from conftest import upload_whole
    started, _ = upload_whole(alice, b"sig" * 100)
    ours = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"], expiresIn=900).json()["url"]
    signature, when, _ = signature_and_time(ours)
    theirs = botocore_url(settings, "get_object", {"Bucket": settings["AWS_BUCKET"], "Key": started["key"]}, 900, when)
    assert signature_and_time(theirs)[0] == signature


def test_a_changed_signature_differs(alice, settings):
    """The comparison can fail: a different expiry gives botocore another signature."""
    started = start_upload(alice)
    ours = alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=started["assetId"],
                     UploadId=started["uploadId"]).json()["url"]
    signature, when, _ = signature_and_time(ours)
    theirs = botocore_url(settings, "upload_part", {"Bucket": settings["AWS_BUCKET"], "Key": started["key"],
                                                    "UploadId": started["uploadId"], "PartNumber": 1}, 3599, when)
    assert signature_and_time(theirs)[0] != signature


import os

import pytest
import requests


@pytest.mark.skipif(os.environ.get("ASSETD_TEST_S3_STRICT") != "1", reason="moto checks no signatures")
def test_a_tampered_signature_is_refused_by_the_server(alice):
    """On a server that checks signatures, one changed digit is a 403: the suite would
    catch a signing bug there."""
    from conftest import upload_whole
    started, _ = upload_whole(alice, b"tamper" * 100)
    url = alice.get("/s3/download-url", workspaceId=1, assetId=started["assetId"]).json()["url"]
    assert requests.get(url, timeout=30).status_code == 200
    head, signature = url.rsplit("X-Amz-Signature=", 1)
    flipped = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    assert requests.get(head + "X-Amz-Signature=" + flipped, timeout=30).status_code == 403

    part = start_upload(alice)
    put_url = alice.get("/s3/get-upload-url", PartNumber=1, workspaceId=1, assetId=part["assetId"],
                        UploadId=part["uploadId"]).json()["url"]
    head, signature = put_url.rsplit("X-Amz-Signature=", 1)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    r = requests.put(head + "X-Amz-Signature=" + flipped, data=b"x" * 100, timeout=30,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403
