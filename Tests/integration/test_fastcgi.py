"""assetd over FastCGI alone, without nginx: libfcgi's own client, cgi-fcgi (Debian's
libfcgi-bin), sends the CGI parameters it finds in its environment to the stack's unix
socket and prints what assetd answers: 'Status: ...', headers, a blank line, the body."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import make_token

pytestmark = pytest.mark.skipif(shutil.which("cgi-fcgi") is None, reason="cgi-fcgi is not installed (libfcgi-bin)")


@pytest.fixture(scope="module")
def socket_path(settings):
    path = settings["ASSETD_SOCKET"]
    assert os.path.exists(path), f"assetd's socket is not at {path}"
    return path


def fastcgi(socket_path, method, path, query="", **params):
    """One request through cgi-fcgi; returns (status, headers, body). Only the parameters
    given here reach assetd: cgi-fcgi passes its whole environment on."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REQUEST_METHOD": method, "SCRIPT_NAME": path,
           "DOCUMENT_URI": path, "REQUEST_URI": path + ("?" + query if query else ""), "QUERY_STRING": query,
           "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1"}
    env.update(params)
    run = subprocess.run(["cgi-fcgi", "-bind", "-connect", socket_path], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=30)
    assert run.returncode == 0, (run.returncode, run.stderr.decode(errors="replace"))
    head, separator, body = run.stdout.partition(b"\r\n\r\n")
    assert separator, f"no end of headers in {run.stdout[:300]!r}"
    headers = {}
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert "status" in headers, f"no Status header in {head!r}"
    status = int(headers.pop("status").split()[0])
    return status, headers, body


def json_body(headers, body):
    assert headers.get("content-type", "").startswith("application/json"), headers
    return json.loads(body)


def test_healthz_is_200_ok_json(socket_path):
    status, headers, body = fastcgi(socket_path, "GET", "/healthz")
    assert status == 200, body
    assert json_body(headers, body) == {"ok": True}


def test_unknown_path_is_404_json(socket_path, settings):
    token = make_token(settings["ASSETD_JWT_SECRET"], "fcgi", [1])
    status, headers, body = fastcgi(socket_path, "GET", "/s3/no-such-route", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 404, body
    error = json_body(headers, body)["error"]
    assert isinstance(error, str) and "/s3/no-such-route" in error


def test_a_route_without_a_token_is_401_json(socket_path):
    status, headers, body = fastcgi(socket_path, "GET", "/api/assets", query="workspaceId=1")
    assert status == 401, body
    assert isinstance(json_body(headers, body)["error"], str)
    assert headers.get("www-authenticate", "").startswith("Bearer"), headers


def test_a_token_reaches_the_route_through_http_authorization(socket_path, settings):
    """The header arrives as the CGI parameter HTTP_AUTHORIZATION, and the query string as
    QUERY_STRING: with both, the same route answers 200 (the contrast to the 401 above)."""
    token = make_token(settings["ASSETD_JWT_SECRET"], "fcgi", [1])
    status, headers, body = fastcgi(socket_path, "GET", "/api/assets", query="workspaceId=1&limit=1",
                                    HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 200, body
    assert set(json_body(headers, body)) == {"assets", "next"}
