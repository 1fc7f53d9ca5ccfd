"""Acceptance, kept apart in Tests/acceptance: the seed's own MultipartUploadService,
unchanged, against the running stack (Node's fetch, TLS verified with the stack's CA)."""
import os
import shutil
import subprocess

import pytest

from conftest import CERTIFICATE, make_token

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.environ.get("ASSETD_SEED", os.path.join(HERE, "..", "..", "..", "shared", "seed", "aws-s3-storage.txt"))


@pytest.mark.s3_wiring
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not os.path.isfile(SEED), reason=f"the seed (reference client) is not at {os.path.normpath(SEED)}; set ASSETD_SEED")
def test_seed_client_uploads_unchanged(base_url, secret):
    env = dict(os.environ, ASSETD_URL=base_url, ASSETD_TOKEN=make_token(secret, "seed", [1]),
               ASSETD_SEED=SEED, NODE_EXTRA_CA_CERTS=CERTIFICATE)
    run = subprocess.run(["node", os.path.join(HERE, "..", "acceptance", "seed-client.mjs")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "download identical" in run.stdout
