"""A hostile or broken S3 endpoint (attacker review 11, M1): a private assetd talks to
the stack's S3 server through a proxy that passes every request on, except that it can
answer ListObjectsV2 as such a server would. What a delete lists is deleted, so assetd
must not follow a listing outside the asset's prefix, nor one that never ends."""
import http.client
import io
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from PIL import Image

from conftest import make_token
from private_assetd import POSTGRES_URL, form, private  # noqa: F401 (private is a fixture)

# The moto pass runs these. A server that checks signatures (the Ceph pass) refuses the
# proxy's rewritten queries, and the private assetd keeps its records in its own SQLite
# file whatever the pass, so the PostgreSQL pass would only repeat the moto pass.
pytestmark = [
    pytest.mark.skipif(os.environ.get("ASSETD_TEST_S3_STRICT") == "1",
                       reason="the proxy rewrites ListObjectsV2 queries, which a server checking signatures refuses"),
    pytest.mark.skipif(bool(POSTGRES_URL), reason="a private assetd on SQLite: the moto pass runs it"),
]


class ListingProxy:
    """An HTTP proxy to `upstream` on a port of the kernel's choosing. `mode` decides
    ListObjectsV2: "honest" passes it on, "ignore-prefix" drops its prefix (a server that
    lists the whole bucket), "endless" answers a truncated page without keys and the same
    continuation token every time."""

    def __init__(self, upstream):
        self.upstream = urlsplit(upstream)
        self.mode = "honest"
        self.listings = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                query = parse_qsl(url.query, keep_blank_values=True)
                if ("list-type", "2") in query:
                    proxy.listings += 1
                    if proxy.mode == "endless":
                        page = (b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
                                b"<KeyCount>0</KeyCount><IsTruncated>true</IsTruncated>"
                                b"<NextContinuationToken>again</NextContinuationToken></ListBucketResult>")
                        return self.answer(200, [("Content-Type", "application/xml")], page)
                    if proxy.mode == "ignore-prefix":
                        query = [(k, v) for k, v in query if k != "prefix"]
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                try:
                    target = url.path + ("?" + urlencode(query) if query else "")
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, target, body=body if body else None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    kept = [(k, v) for k, v in response.getheaders()
                            if k.lower() not in ("connection", "transfer-encoding", "content-length")]
                    self.answer(response.status, kept, data)
                finally:
                    connection.close()

            def answer(self, status, headers, data):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile(private):
    """The private assetd, started with the proxy as its S3 endpoint; its token names
    workspaces 1 and 2."""
    proxy = ListingProxy(private.env["AWS_ENDPOINT_URL_S3"])
    try:
        private.start(AWS_ENDPOINT_URL_S3=proxy.url)
        private.token = make_token(private.secret, "private", [1, 2])
        yield proxy
    finally:
        private.kill()
        proxy.close()


def png_bytes(seed):
    out = io.BytesIO()
    Image.new("RGB", (40 + seed, 30), (seed * 40 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def upload(private, workspace, seed):
    body, content_type = form(png_bytes(seed))
    r = private.request("POST", "/api/assets/upload", f"workspaceId={workspace}", body, content_type)
    assert r.status == 200, r.body
    return r.json()["asset"]["id"]


def test_a_delete_never_deletes_what_a_listing_names_outside_the_asset(private, hostile):
    other = upload(private, 2, 3)
    mine = upload(private, 1, 5)
    theirs = f"2/digital_assets/{other}.png"
    assert theirs in private.keys()

    hostile.mode = "ignore-prefix"
    r = private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={mine}")
    assert r.status == 502 and b"MalformedResponse" in r.body, (r.status, r.body)
    assert hostile.listings == 1
    assert theirs in private.keys(), "workspace 2's object was deleted by workspace 1's delete"
    assert "ListObjectsV2 answered a key outside the prefix asked for" in private.log()
    assert private.request("GET", f"/api/assets/{mine}", "workspaceId=1").status == 404, "deleting: not found meanwhile"

    # Once S3 lists properly, a repeated delete finishes; workspace 2's asset is untouched.
    hostile.mode = "honest"
    r = private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={mine}")
    assert r.status == 200, r.body
    assert not [key for key in private.keys() if key.startswith("1/")]
    assert theirs in private.keys()
    assert private.request("GET", f"/api/assets/{other}", "workspaceId=2").json()["asset"]["status"] == "ready"


def test_a_listing_that_never_ends_does_not_pin_a_worker(private, hostile):
    mine = upload(private, 1, 7)
    hostile.mode = "endless"
    started = time.time()
    r = private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={mine}", timeout=30)
    assert r is not None and r.status == 502 and b"MalformedResponse" in r.body, r and (r.status, r.body)
    assert time.time() - started < 10
    assert hostile.listings == 2, "an empty truncated page is followed once; its token again is no progress"
