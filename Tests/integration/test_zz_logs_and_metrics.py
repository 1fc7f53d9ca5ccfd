"""Runs last on purpose (file name): what the whole suite left in the logs, and what
/metrics counted. Every log of the stack (assetd's access lines and errors, nginx's
access and error logs, setup-bucket's report) must be free of tokens, signatures and
secrets. The S3 server's own log (moto's request lines, which carry the presigned URLs
the browser-side tests PUT to) is not ours and is left out."""
import glob
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import CERTIFICATE

# The external-mode pass runs it too: its stack's logs (setup-bucket's included) must be clean.
pytestmark = pytest.mark.s3_wiring


def metrics(base_url):
    r = requests.get(base_url + "/metrics", verify=CERTIFICATE, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.text


def instance_sockets():
    """The sockets of the stack's assetd processes when dev-stack runs several
    (ASSETD_DEV_INSTANCES): assetd-1.sock .. assetd-N.sock; empty for one."""
    return sorted(glob.glob(os.path.join(os.environ["ASSETD_STATE_DIR"], "assetd-*.sock")))


def metrics_of_each(base_url):
    """/metrics of every instance: through nginx for one; for several, from each one's
    socket over FastCGI (nginx would ask one of them only), to be summed."""
    sockets = instance_sockets()
    if not sockets:
        return [metrics(base_url)]
    import types
    from private_assetd import PrivateAssetd
    texts = []
    for path in sockets:
        r = PrivateAssetd.request(types.SimpleNamespace(env={"ASSETD_SOCKET": path}, token=""), "GET", "/metrics", token=False)
        assert r is not None and r.status == 200
        texts.append(r.body.decode())
    return texts


def total(texts, name, **labels):
    return sum(sample(text, name, **labels) for text in texts)


def sample(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(got.get(k) == v for k, v in labels.items()) and len(got) == len(labels):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_the_requests_made(base_url, alice):
    before = metrics_of_each(base_url)
    healthz = total(before, "assetd_http_requests_total", route="/healthz", method="GET", status="200")
    for _ in range(3):
        assert requests.get(base_url + "/healthz", verify=CERTIFICATE, timeout=10).status_code == 200
    forbidden = alice.get("/api/assets", workspaceId=2)
    assert forbidden.status_code == 403
    after = metrics_of_each(base_url)
    assert total(after, "assetd_http_requests_total", route="/healthz", method="GET", status="200") == healthz + 3
    assert total(after, "assetd_http_requests_total", route="/api/assets", method="GET", status="403") >= 1
    assert total(after, "assetd_http_request_duration_seconds_count", route="/healthz") >= healthz + 3
    # The suite's uploads went through S3 calls that were counted by operation.
    assert total(after, "assetd_s3_requests_total", operation="CreateMultipartUpload") >= 1
    text = "".join(after)
    assert "assetd_open_uploads " in text
    # Ids never become labels.
    assert "/api/assets/{assetId}" in text or "route=\"/api/assets/1\"" not in text


def value(text, name):
    """The value of an unlabelled sample, None when the metric is absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ", 1)[1])
    return None


def test_thumbnail_decoder_and_reconciler_metrics(base_url, alice):
    """What a sysadmin alerts on (docs/OPERATIONS.md, "Metrics"): an image of its own (the
    test also runs alone) gets its thumbnail, counted by result (every result's series is
    there from the start); the decoder was reached; the pending gauge is read from the
    database; and a reconciler pass finished on some host (one host a pass on PostgreSQL:
    the max over hosts)."""
    from test_thumbnails import direct_upload, gradient, jpeg_bytes, settled
    asset = direct_upload(alice, jpeg_bytes(gradient(64, 48)), "metrics.jpg")
    assert settled(alice, asset["id"])["thumbnail"]["status"] == "ready"
    texts = metrics_of_each(base_url)
    assert total(texts, "assetd_thumbnail_tasks_total", result="ready") >= 1
    for text in texts:
        for result in ("ready", "failed", "retried", "unavailable"):
            assert f'assetd_thumbnail_tasks_total{{result="{result}"}} ' in text
        assert value(text, "assetd_thumbnail_pending") is not None
    ups = [value(text, "assetd_decoder_up") for text in texts]
    assert 1.0 in ups and all(up in (None, 0.0, 1.0) for up in ups), ups
    passes = [value(text, "assetd_reconciler_last_pass_timestamp_seconds") or 0 for text in texts]
    assert time.time() - 6 * 3600 < max(passes) <= time.time() + 5, passes


def test_logs_hold_no_token_signature_or_secret(settings):
    state = os.environ["ASSETD_STATE_DIR"]
    logs = [p for p in glob.glob(os.path.join(state, "logs", "*.log")) if os.path.basename(p) != "s3.log"]
    assert any("assetd" in os.path.basename(p) for p in logs), logs
    secrets = [settings["ASSETD_JWT_SECRET"], settings["AWS_SECRET_ACCESS_KEY"]]
    patterns = [re.compile(p) for p in (r"eyJ[A-Za-z0-9_-]{8,}\.", r"X-Amz-Signature", r"X-Amz-Credential",
                                        r"Bearer\s+[A-Za-z0-9_-]{8,}", r"(?i)authorization:")]
    lines = 0
    for path in logs:
        with open(path, errors="replace") as f:
            for number, line in enumerate(f, 1):
                lines += 1
                for secret in secrets:
                    assert secret not in line, f"{path}:{number} holds a secret"
                for pattern in patterns:
                    assert not pattern.search(line), f"{path}:{number}: {pattern.pattern}: {line[:200]}"
    assert lines > 100, f"only {lines} log lines: the suite's logs were not where expected"
    # The access-log line is there, with nginx's request id.
    text = open(os.path.join(state, "logs", "assetd.log"), errors="replace").read()
    assert re.search(r"method=GET request_id=[0-9a-f]{32} route=/s3/start-upload status=200", text)


def test_the_version_shows_in_the_option_the_starting_line_and_metrics(base_url):
    """The sysadmin's review, L3, M12, L4: which version runs (`assetd --version`, the
    "starting" line, assetd_build_info), the schema's migration logged step by step at the
    stack's first start, and no raw libpq NOTICE line (PostgreSQL pass) in assetd's log."""
    out = subprocess.run([os.environ["ASSETD_BIN"], "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    version = out.stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), out.stdout
    for text in metrics_of_each(base_url):
        assert sample(text, "assetd_build_info", version=version) == 1
    state = os.environ["ASSETD_STATE_DIR"]
    logs = "".join(open(p, errors="replace").read() for p in glob.glob(os.path.join(state, "logs", "assetd*.log")))
    assert re.search(rf"version={re.escape(version)}\b.*\bstarting$", logs, re.M), "no version in the starting line"
    assert re.search(r"migrating schema 0 -> \d+ \(", logs), "the first start's migration was not logged"
    assert re.search(r'migrated \\?"v1: [^"\\]*\\?" in \d+\.\d{3} s', logs), "no step of the migration was logged"
    assert "NOTICE:" not in logs
