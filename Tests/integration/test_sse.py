"""Server-side encryption (ASSETD_SSE, issue 20): every key assetd writes carries the
configured encryption, as the S3 server records it (HeadObject's x-amz-server-side-encryption
and KMS key id): the original from a multipart upload whose part went up by a presigned URL
with no SSE header, the original from a direct upload, a new version's archive and promoted
copies (CopyObject), and the thumbnail (PutObject). UploadPartCopy, reached only above 5 GiB,
is covered by LiveS3Tests.everyWriteCarriesTheConfiguredEncryption. And check-config says
whether the bucket's default encryption agrees.

moto records SSE and serves KMS on the same endpoint: the key is made there with boto3's
kms client. A server that refuses SSE (Ceph RGW 16 without an SSE backend) skips, saying
what it answered."""
import base64
import hashlib
import io
import json
import os
import subprocess
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from private_assetd import PrivateAssetd, form, wait_until


def jpeg(seed):
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed * 40 % 256, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def encryption(instance, key):
    head = instance.s3.head_object(Bucket=instance.bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def refusal(instance, **sse):
    """What the server answers to a PutObject asking for this encryption: None if it stores it."""
    try:
        instance.s3.put_object(Bucket=instance.bucket, Key="_sse_probe", Body=b"x", **sse)
        instance.s3.delete_object(Bucket=instance.bucket, Key="_sse_probe")
        return None
    except ClientError as error:
        answer = error.response
        return f"HTTP {answer['ResponseMetadata']['HTTPStatusCode']} {answer['Error'].get('Code')}"


def kms_key(env):
    """A KMS key on the S3 endpoint's KMS (moto serves it there); skip where there is none."""
    kms = boto3.client("kms", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       config=Config(retries={"max_attempts": 1}))
    try:
        return kms.create_key(Description="assetd SSE test")["KeyMetadata"]
    except ClientError as error:
        answer = error.response
        pytest.skip(f"the S3 endpoint serves no KMS API (CreateKey: HTTP {answer['ResponseMetadata']['HTTPStatusCode']}); "
                    "SSE-KMS is tested on moto")
    except EndpointConnectionError as error:
        pytest.skip(f"the S3 endpoint serves no KMS API ({error}); SSE-KMS is tested on moto")


@pytest.fixture(params=["AES256", "aws:kms"])
def encrypted(request, tmp_path):
    """A private assetd with ASSETD_SSE set (and, for aws:kms, a new KMS key), and what
    HeadObject must then say of every key it writes."""
    settings = {"ASSETD_THREADS": 4, "ASSETD_SSE": request.param}
    instance = PrivateAssetd(str(tmp_path), **settings)
    try:
        if request.param == "aws:kms":
            key = kms_key(instance.env)
            instance.env.update({"ASSETD_SSE_KMS_KEY_ID": key["KeyId"], "ASSETD_SSE_BUCKET_KEY": "on"})
            expected = ("aws:kms", key["KeyId"])
            refused = refusal(instance, ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
        else:
            key, expected = None, ("AES256", None)
            refused = refusal(instance, ServerSideEncryption="AES256")
        if refused:
            pytest.skip(f"this S3 server refuses ASSETD_SSE={request.param} ({refused}); SSE is tested on moto")
        yield instance.start(), expected, key
    finally:
        instance.close()


def complete(instance, started, parts):
    body = json.dumps({"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1, "parts": parts}).encode()
    r = instance.request("POST", "/s3/complete-upload", body=body, content_type="application/json")
    assert r.status == 200, r.body
    return r.json()


def multipart(instance, data, asset_id=None):
    """The browser's flow: start, a presigned part URL, a PUT with no SSE header, complete."""
    query = "workspaceId=1&fileType=image/jpeg" + (f"&assetId={asset_id}" if asset_id else "")
    r = instance.request("GET", "/s3/start-upload", query)
    assert r.status == 200, r.body
    started = r.json()
    r = instance.request("GET", "/s3/get-upload-url",
                         f"workspaceId=1&assetId={started['assetId']}&UploadId={started['uploadId']}&PartNumber=1")
    assert r.status == 200, r.body
    put = requests.put(r.json()["url"], data=data, headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert put.status_code == 200, put.text[:300]
    assert not any(name.lower().startswith("x-amz-server-side-encryption") for name in put.request.headers)
    return started, complete(instance, started, [{"ETag": put.headers["ETag"], "PartNumber": 1}])


def test_every_key_assetd_writes_is_encrypted(encrypted):
    instance, expected, _ = encrypted
    started, _ = multipart(instance, jpeg(1))
    asset_id = started["assetId"]
    assert encryption(instance, f"1/digital_assets/{asset_id}.jpg") == expected, "the multipart original"

    body, content_type = form(jpeg(2), "direct.jpg")
    r = instance.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r.status == 200, r.body
    direct = r.json()["asset"]
    assert encryption(instance, direct["key"]) == expected, "the direct upload"

    # A new version: the old bytes copied to versions/{id}/v1, the new ones promoted by a copy.
    multipart(instance, jpeg(3), asset_id)
    assert encryption(instance, f"1/versions/{asset_id}/v1.jpg") == expected, "the archived version (CopyObject)"
    assert encryption(instance, f"1/digital_assets/{asset_id}.jpg") == expected, "the promoted version (CopyObject)"

    def thumbnails():
        keys = [k for k in instance.keys() if "/thumbnails/" in k]
        return keys if len(keys) >= 2 else None
    for key in wait_until("the thumbnails", thumbnails, 60):
        assert encryption(instance, key) == expected, key
    assert len(instance.keys()) >= 5


def test_a_direct_upload_under_kms_records_its_md5_for_the_reconciler(encrypted):
    """Under aws:kms the ETag is not an MD5: the PutObject writes the MD5 that S3 checked
    (Content-MD5) as metadata, and a direct upload killed after its object landed is made
    ready by the reconciler from it."""
    instance, expected, key = encrypted
    if key is None:
        pytest.skip("AES256 ETags are MD5s; the md5 metadata is written only under aws:kms")
    head = killed_direct_upload_is_made_ready(instance, jpeg(4))
    assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == expected


def killed_direct_upload_is_made_ready(instance, data):
    """A direct upload whose assetd dies once its PutObject landed: the object carries the
    MD5 that S3 checked as its md5 metadata, and the restarted assetd's reconciler makes
    the asset ready by it. Returns the object's HeadObject."""
    known = set(instance.keys())
    body, content_type = form(data, "crash.jpg")
    instance.stop()
    instance.start(ASSETD_FAULT="direct-upload-stored")
    assert instance.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type) is None, "assetd did not die"
    instance.process.wait(timeout=10)
    stored = [k for k in instance.keys() if k.startswith("1/digital_assets/") and k not in known]
    assert len(stored) == 1, instance.keys()
    head = instance.s3.head_object(Bucket=instance.bucket, Key=stored[0])
    assert head["Metadata"].get("md5") == hashlib.md5(data).hexdigest(), head["Metadata"]
    instance.start()
    asset_id = stored[0].rsplit("/", 1)[1].split(".")[0]
    wait_until("the reconciler to mark it ready",
               lambda: instance.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json().get("asset", {}).get("status") == "ready")
    return head


def check_config(instance, **overrides):
    env = {k: v for k, v in instance.env.items() if k != "ASSETD_FAULT"}
    env.update(overrides)
    result = subprocess.run([os.environ["ASSETD_BIN"], "check-config"], env=env, capture_output=True, text=True, timeout=60)
    line = next((l for l in result.stdout.splitlines() if " encryption:" in l), None)
    assert line, result.stdout + result.stderr
    return result.returncode, line


def test_check_config_compares_the_bucket_default(encrypted):
    instance, expected, key = encrypted
    code, line = check_config(instance)
    assert code != 0 and line.startswith("FAIL encryption:") and "no default encryption" in line, line

    by_default = {"SSEAlgorithm": expected[0]}
    if key:
        by_default["KMSMasterKeyID"] = key["Arn"]  # an ARN where ASSETD_SSE_KMS_KEY_ID names the key id
    instance.s3.put_bucket_encryption(Bucket=instance.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": by_default, "BucketKeyEnabled": bool(key)}]})
    code, line = check_config(instance)
    assert code == 0 and line.startswith("OK   encryption:"), line

    # Unset, over a bucket that encrypts with KMS by default: ETags would not be MD5s.
    code, line = check_config(instance, ASSETD_SSE="", ASSETD_SSE_KMS_KEY_ID="", ASSETD_SSE_BUCKET_KEY="")
    if key:
        assert code != 0 and line.startswith("FAIL encryption:") and "not MD5s" in line, line
    else:
        assert code == 0 and line.startswith("OK   encryption:"), line


def test_a_kms_default_switched_back_is_an_error_each_pass_and_a_gauge(tmp_path):
    """Review L5: a bucket default set to KMS for a moment, then removed, leaves the host
    without its ETag-to-MD5 checks until a restart: said at each reconciler pass (1 s here)
    by an error line naming the restart and ASSETD_SSE, and by assetd_etags_md5 0."""
    instance = PrivateAssetd(str(tmp_path), ASSETD_THREADS=2, ASSETD_RECONCILE_INTERVAL=1)
    try:
        key = kms_key(instance.env)
        if refusal(instance, ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"]):
            pytest.skip("this S3 server refuses aws:kms; SSE is tested on moto")

        def gauge():
            r = instance.request("GET", "/metrics", token=False)
            assert r.status == 200, r.body
            line = next(l for l in r.body.decode().splitlines() if l.startswith("assetd_etags_md5 "))
            return float(line.split()[1])

        instance.start()
        assert gauge() == 1.0
        instance.s3.put_bucket_encryption(Bucket=instance.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}}]})
        wait_until("the KMS default seen", lambda: "the bucket encrypts with aws:kms" in instance.log())
        assert gauge() == 0.0
        instance.s3.delete_bucket_encryption(Bucket=instance.bucket)
        reverted = "but was SSE-KMS earlier"
        wait_until("two passes saying so", lambda: instance.log().count(reverted) >= 2, seconds=30)
        line = next(l for l in instance.log().splitlines() if reverted in l)
        assert " error " in line.split(reverted)[0], line
        assert "restart assetd" in line and "set ASSETD_SSE" in line, line
        assert gauge() == 0.0, "until a restart"
        instance.stop()
        instance.start()
        assert gauge() == 1.0, "a restart returns to MD5 ETags"
    finally:
        instance.close()


def test_a_kms_bucket_default_with_sse_unset_is_noticed(tmp_path):
    """ASSETD_SSE unset over a bucket whose default encryption is SSE-KMS (review M1):
    assetd reads the default at start, says so (an error line naming what to set; sse,
    bucket_sse and etags in the starting line) and treats ETags as under aws:kms: a
    multipart upload whose part was signed with its MD5 completes, and a direct upload
    killed after its object landed writes the md5 metadata the reconciler makes it ready by.
    (moto answers MD5 ETags even under KMS, so the md5 metadata is what shows the switch.)"""
    instance = PrivateAssetd(str(tmp_path), ASSETD_THREADS=4)
    try:
        key = kms_key(instance.env)
        instance.s3.put_bucket_encryption(Bucket=instance.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}}]})
        if refusal(instance, ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"]):
            pytest.skip("this S3 server refuses aws:kms; SSE is tested on moto")
        instance.start()
        log = instance.log()
        starting = next(line for line in log.splitlines() if "bucket_sse=" in line)
        assert "sse=none" in starting and "aws:kms" in starting and "not md5" in starting, starting
        assert "the bucket encrypts with aws:kms" in log and "ASSETD_SSE is unset" in log and "set ASSETD_SSE=aws:kms" in log, log[-3000:]

        # A multipart upload, its part signed with its MD5 and PUT with it: completes.
        data = jpeg(5)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        r = instance.request("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg")
        assert r.status == 200, r.body
        started = r.json()
        r = instance.request("GET", "/s3/get-upload-url", f"workspaceId=1&assetId={started['assetId']}&UploadId={quote(started['uploadId'], safe='')}"
                             f"&PartNumber=1&contentMD5={quote(md5, safe='')}")
        assert r.status == 200, r.body
        put = requests.put(r.json()["url"], data=data, headers={"Content-MD5": md5}, timeout=60)
        assert put.status_code == 200, put.text[:300]
        completed = complete(instance, started, [{"ETag": put.headers["ETag"], "PartNumber": 1}])
        assert encryption(instance, f"1/digital_assets/{started['assetId']}.jpg")[0] == "aws:kms", completed

        # A direct upload killed after its PutObject: the MD5 S3 checked is in its metadata.
        assert killed_direct_upload_is_made_ready(instance, jpeg(6)).get("ServerSideEncryption") == "aws:kms"
    finally:
        instance.close()
