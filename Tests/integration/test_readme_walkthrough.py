"""The README's curl walk-through, run exactly as written (the shell block under "A
walk-through with curl", extracted from README.md at test time) against the stack under
test, in a scratch directory standing for the repository's top (its `.build` linked in).
A step that fails, or a README edit that breaks one, fails here."""
import json
import os
import re
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def walkthrough_block():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("## A walk-through with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README.md: no sh block under 'A walk-through with curl'"
    return match.group(1)


def json_lines(output):
    values = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            values.append(json.loads(line))
    return values


@pytest.mark.s3_wiring
def test_the_readme_walkthrough_runs_as_written():
    if "ASSETD_STATE_DIR" not in os.environ or "ASSETD_HTTPS_PORT" not in os.environ:
        pytest.skip("needs the stack's ASSETD_STATE_DIR and ASSETD_HTTPS_PORT (scripts/test exports them)")
    block = walkthrough_block()
    # What the block leaves in its variables, printed after it: the checks below read them.
    epilogue = '\nprintf "@@ %s\\n" "ASSET=$ASSET" "ETAG=$ETAG" "URL=$URL"\n'
    with tempfile.TemporaryDirectory() as top:
        os.symlink(os.path.join(ROOT, ".build"), os.path.join(top, ".build"))
        env = dict(os.environ)
        env["ASSETD_STATE_DIR"] = os.path.abspath(env["ASSETD_STATE_DIR"])
        result = subprocess.run(["bash", "-c", block + epilogue], cwd=top, env=env, capture_output=True, text=True,
                                timeout=120)
        left = sorted(set(os.listdir(top)) - {".build"})
    out, err = result.stdout, result.stderr
    context = f"stdout:\n{out}\nstderr:\n{err}"
    assert result.returncode == 0, context
    assert err == "", "the walk-through wrote to stderr: a step failed or complained\n" + context
    assert left == [], f"the walk-through left {left} behind"
    marks = dict(line[3:].split("=", 1) for line in out.splitlines() if line.startswith("@@ "))
    assert re.fullmatch(r'"[0-9a-f]{32}"', marks["ETAG"]), "step 3: no ETag from S3\n" + context
    assert marks["URL"].startswith("http"), "step 2: no part URL\n" + context
    asset = marks["ASSET"]

    start, completed, direct, first, second, patched, found = json_lines(out)
    assert start["assetId"] == asset and start["uploadId"] and start["key"].startswith("1/digital_assets/")
    assert completed["success"] is True and completed["key"] == start["key"], context
    assert "downloaded: identical" in out, "step 5: the download differs\n" + context
    assert direct["asset"]["fileType"] == "image/png" and direct["asset"]["status"] == "ready"
    first, second, patched = first["asset"], second["asset"], patched["asset"]
    assert first["id"] == asset and first["status"] == "ready" and first["fileType"] == "image/jpeg"
    assert second["id"] == direct["asset"]["id"]
    assert patched["title"] == "Sunset" and patched["tags"] == ["holiday"], context
    assert asset in [item["id"] for item in found["assets"]], "step 8: the search did not find the asset\n" + context
