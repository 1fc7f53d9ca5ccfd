"""The peer that users would otherwise write: Flask receives the form, boto3 streams the
file to S3 with upload_fileobj. bench/direct.sh runs it on gunicorn (2 workers) behind an
nginx with the same TLS and buffering as assetd's, and compares the two.

It does less than assetd (no token, no content check, no database), so the comparison
favours it."""
import os
import uuid

import boto3
from botocore.config import Config
from flask import Flask, jsonify, request

app = Flask(__name__)
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
)
BUCKET = os.environ["AWS_BUCKET"]


@app.post("/api/assets/upload")
def upload():
    file = request.files.get("file")
    if file is None:
        return jsonify(error="file is required"), 400
    key = f"peer/{uuid.uuid4().hex}.jpg"
    s3.upload_fileobj(file.stream, BUCKET, key, ExtraArgs={"ContentType": file.mimetype or "application/octet-stream"})
    return jsonify(asset={"key": key})
