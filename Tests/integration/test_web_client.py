"""The browser client's module-level tests (Tests/web, node --test): batching, the retry
schedule, 403/429/offline, progress arithmetic, cancel, pause and resume, against fakes.
The same module runs against the real stack in Chromium in test_browser.py."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_client_module_under_node():
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"node {major} is older than 20 (global File, node:test)")
    result = subprocess.run([node, "--test", os.path.join(ROOT, "Tests", "web")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
