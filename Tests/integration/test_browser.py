"""The demo page and the browser client in a real headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against the real stack: TLS nginx serving the page,
assetd over FastCGI, presigned PUTs going cross-origin to the S3 server, whose bucket CORS
rules (assetd setup-bucket) must let the preflight pass and expose ETag.

The client is used unchanged. What the tests need to see or disturb they get from outside
it: a small script wraps XMLHttpRequest.open and fetch in the page to count requests and to
send chosen part PUTs to a local server (127.0.0.1) that answers 500 or never answers.

Where the token goes is read from outside the page too: a second Chromium logs every
request it sends (its performance log: URL and headers), and a listener on another
loopback port records anything that reaches it."""
import base64
import io
import json
import os
import shutil
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
import requests

from conftest import CERTIFICATE, as_jpeg, make_token, noise_jpeg, start_upload

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PART = 5 * 1024 * 1024
WAIT = 120  # seconds: the longest any step may take


def chromium(performance=False):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (scripts/test installs it)")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                "--window-size=1280,1100", "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    # The console (get_log('browser')), and for `performance` every request sent (the
    # DevTools Network events: URL and headers, get_log('performance')).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if performance else {})})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(WAIT)
    return browser


@pytest.fixture(scope="session")
def driver():
    browser = chromium()
    yield browser
    browser.quit()


class Disturber(BaseHTTPRequestHandler):
    """Where the page's wrapper sends chosen part PUTs: /fail answers 500 (as S3 does when
    it is in trouble), /hang holds the request until the test ends. CORS as S3's rules."""

    release = threading.Event()

    def log_message(self, *args):
        pass

    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "PUT")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Access-Control-Expose-Headers", "ETag")

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        self.end_headers()

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", 0))
        while length > 0:
            length -= len(self.rfile.read(min(length, 1 << 20)))
        if self.path.startswith("/hang"):
            self.release.wait(WAIT)
        body = b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
        self.send_response(500)
        self.cors()
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def disturber():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Disturber)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Disturber.release.set()
    server.shutdown()
    server.server_close()


# Counts the page's requests, and lets a test redirect chosen part PUTs (window.__redirect).
RECORDER = """
if (!window.__recorded) {
  window.__recorded = true;
  window.__puts = []; window.__calls = []; window.__redirect = null;
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (method === 'PUT') {
      const redirected = window.__redirect && window.__redirect(url);
      window.__puts.push({url: String(url), redirected: !!redirected});
      if (redirected) url = redirected;
    } else {
      window.__calls.push(method + ' ' + new URL(url, location.href).pathname);
    }
    return open.call(this, method, url, ...rest);
  };
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url, location.href);
    window.__calls.push(((init && init.method) || 'GET') + ' ' + url.pathname);
    return fetch.call(this, input, init);
  };
}
"""


# The page is signed in and shows its upload controls.
READY = "return document.readyState === 'complete' && !document.querySelector('#picker').hidden"


def part_numbers(puts):
    return sorted(int(p["url"].split("partNumber=")[1].split("&")[0]) for p in puts)


class Page:
    def __init__(self, driver, base_url, secret, workspace):
        self.driver = driver
        self.base = base_url
        self.workspace = workspace
        self.token = make_token(secret, "browser", [workspace])
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {self.token}"

    def open(self):
        # A page of its own origin state: no resume records from other tests. A fresh load
        # (about:blank first): a link differing only in its #fragment would not reload.
        # The link's token is offered, then used once confirmed.
        self.driver.get("about:blank")
        self.driver.get(f"{self.base}/#token={self.token}&workspaceId={self.workspace}")
        self.wait("return document.readyState === 'complete' && !document.querySelector('#offer').hidden")
        self.driver.find_element("css selector", "#use-token").click()
        self.wait(READY)
        self.driver.execute_script(RECORDER)

    def reload(self):
        self.driver.refresh()
        self.wait(READY)
        self.driver.execute_script(RECORDER)

    def wait(self, script, timeout=WAIT, *args):
        deadline = time.monotonic() + timeout
        while True:
            value = self.driver.execute_script(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for: {script}\nuploads: {self.states()}")
            time.sleep(0.1)

    def pick(self, *paths):
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys("\n".join(paths))

    def states(self):
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#uploads li')].map(li => li.querySelector('.name').textContent + ': ' + li.querySelector('.state').textContent)")

    def finished(self, count):
        """Waits for `count` finished uploads; returns {file name: asset id}."""
        self.wait(f"return document.querySelectorAll('#uploads [data-asset-id]').length >= {count}"
                  " || [...document.querySelectorAll('#uploads li.failed')].length > 0")
        failed = self.driver.execute_script("return [...document.querySelectorAll('#uploads li.failed .state')].map(e => e.textContent)")
        assert not failed, failed
        return self.driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('#uploads [data-asset-id]')]"
            ".map(li => [li.querySelector('.name').textContent, li.dataset.assetId]))")

    def get(self, path, **params):
        r = self.api.get(self.base + path, params={"workspaceId": self.workspace, **params}, timeout=30,
                         verify=CERTIFICATE)  # per call: REQUESTS_CA_BUNDLE would override the session's
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r.json()

    def downloaded(self, asset_id):
        url = self.get("/s3/download-url", assetId=asset_id)["url"]
        r = requests.get(url, timeout=60)
        assert r.status_code == 200, r.text[:300]
        return r.content


@pytest.fixture
def page(driver, base_url, secret, request):
    # Each test gets a workspace of its own, so that lists and S3 prefixes do not mix, also
    # with what an earlier run on the same bucket left (the external-mode Ceph pass).
    workspace = 100_000 + os.getpid() % 50_000 * 10 + [item.name for item in request.session.items].index(request.node.name)
    p = Page(driver, base_url, secret, workspace)
    p.open()
    yield p
    driver.execute_script("window.__redirect = null; try { localStorage.clear() } catch (e) {}")


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def small_png():
    from PIL import Image

    # About 100 KB: noise does not compress.
    out = io.BytesIO()
    Image.frombytes("RGB", (185, 180), os.urandom(185 * 180 * 3)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.s3_wiring
def test_page_uploads_a_multipart_file_and_a_direct_image(page, big_jpeg, tmp_path):
    png = small_png()
    assert 90_000 < len(png) < 110_000
    big = write(tmp_path, "big photo.jpg", big_jpeg)
    small = write(tmp_path, "small.png", png)
    page.pick(big, small)
    ids = page.finished(2)
    assert set(ids) == {"big photo.jpg", "small.png"}

    puts = page.driver.execute_script("return window.__puts")
    calls = page.driver.execute_script("return window.__calls")
    expected_parts = -(-len(big_jpeg) // PART)
    assert part_numbers(puts) == list(range(1, expected_parts + 1)), puts
    assert calls.count("POST /api/assets/upload") == 1, calls
    assert calls.count("GET /s3/start-upload") == 1 and calls.count("POST /s3/complete-upload") == 1, calls

    for name, data, kind in (("big photo.jpg", big_jpeg, "image/jpeg"), ("small.png", png, "image/png")):
        asset = page.get(f"/api/assets/{ids[name]}")["asset"]
        assert asset["status"] == "ready", asset
        assert asset["fileType"] == kind and asset["size"] == len(data) and asset["fileName"] == name
        assert page.downloaded(ids[name]) == data, f"{name}: the bytes read back differ"

    # The asset list shows both with their thumbnails, once assetd has made them (the page
    # looks again while any is pending); an asset without one shows a placeholder.
    deadline = time.monotonic() + WAIT
    while any(page.get(f"/api/assets/{i}")["asset"]["thumbnail"]["status"] == "pending" for i in ids.values()):
        assert time.monotonic() < deadline, "the thumbnails stayed pending"
        time.sleep(0.5)
    for name, asset_id in ids.items():
        thumbnail = page.get(f"/api/assets/{asset_id}")["asset"]["thumbnail"]
        selector = f"#assets [data-listed-asset-id='{asset_id}']"
        if thumbnail["url"]:
            page.wait(f"const i = document.querySelector(\"{selector} img\"); return i && i.complete && i.naturalWidth > 0", 30)
        else:
            assert thumbnail["status"] in ("none", "failed"), (name, thumbnail)
            page.wait(f"return !!document.querySelector(\"{selector} .placeholder\")", 30)
    shots = os.path.join(os.environ.get("ASSETD_STATE_DIR", str(tmp_path)), "screenshots")
    os.makedirs(shots, exist_ok=True)
    path = os.path.join(shots, "page-after-uploads.png")
    page.driver.save_screenshot(path)
    assert os.path.getsize(path) > 10_000
    print(f"screenshot: {path}")


def test_the_list_shows_a_placeholder_without_a_thumbnail(page):
    """An asset whose thumbnail.url is null (pending, failed, none) gets a placeholder."""
    png = small_png()
    r = page.api.post(page.base + "/api/assets/upload", params={"workspaceId": page.workspace},
                      files={"file": ("p.png", png, "image/png")}, timeout=60, verify=CERTIFICATE)
    assert r.status_code == 200, r.text
    asset_id = r.json()["asset"]["id"]
    page.driver.execute_script("""
        const fetch = window.fetch;
        window.fetch = async (input, init) => {
          const response = await fetch(input, init);
          if (!String(input).includes('/api/assets?')) return response;
          const body = await response.json();
          for (const a of body.assets) a.thumbnail = { status: 'failed', url: null };
          return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
        };
        document.querySelector('#refresh').click();""")
    page.wait(f"return !!document.querySelector(\"#assets [data-listed-asset-id='{asset_id}'] .placeholder\")", 30)
    assert not page.driver.execute_script(f"return document.querySelector(\"#assets [data-listed-asset-id='{asset_id}'] img\")")


def test_progress_only_grows_and_ends_at_the_total(page):
    """The module itself, in the page: a 11 MiB JPEG made in the browser, multipart."""
    head = io.BytesIO()
    from PIL import Image

    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(head, "JPEG")
    result = page.driver.execute_async_script("""
        const [jpeg, workspaceId, token, done] = arguments;
        (async () => {
          const { upload } = await import('/assetd-upload.js');
          const head = Uint8Array.from(atob(jpeg), c => c.charCodeAt(0));
          const pad = new Uint8Array(11 * 1024 * 1024);
          for (let i = 0; i < pad.length; i += 65536) crypto.getRandomValues(pad.subarray(i, i + 65536));
          const file = new File([head, pad], 'progress.jpg', { type: 'image/jpeg', lastModified: Date.now() });
          const events = [];
          const result = await upload(file, { workspaceId, getToken: () => token, onProgress: e => events.push([e.loaded, e.total]) });
          const small = new File([head], 'small.jpg', { type: 'image/jpeg' });
          const smallEvents = [];
          await upload(small, { workspaceId, getToken: () => token, onProgress: e => smallEvents.push([e.loaded, e.total]) });
          return { result, events, smallEvents, size: file.size, smallSize: small.size };
        })().then(done, e => done({ error: String(e) }));
    """, base64.b64encode(head.getvalue()).decode(), page.workspace, page.token)
    assert "error" not in result, result
    for events, size in ((result["events"], result["size"]), (result["smallEvents"], result["smallSize"])):
        assert len(events) >= 2 if size > PART else len(events) >= 1, events
        loaded = [e[0] for e in events]
        assert all(e[1] == size for e in events), events
        assert all(b > a for a, b in zip(loaded, loaded[1:])), f"progress went back or stood still: {loaded}"
        assert max(loaded) <= size and loaded[-1] == size, loaded
    asset = page.get(f"/api/assets/{result['result']['assetId']}")["asset"]
    assert asset["status"] == "ready" and asset["size"] == result["size"]


def test_cancel_mid_upload_aborts_it_and_leaves_nothing(page, big_jpeg, tmp_path, disturber, s3, bucket):
    from selenium.webdriver.common.by import By

    # Part 1 reaches S3; the others hang, so the upload is surely mid-way when cancelled.
    page.driver.execute_script(
        "const d = arguments[0]; window.__redirect = url => /[?&]partNumber=1(&|$)/.test(url) ? null : d + '/hang';", disturber)
    page.pick(write(tmp_path, "cancel-me.jpg", big_jpeg))
    page.wait("return window.__puts.length >= 3")
    prefix = f"{page.workspace}/"
    deadline = time.monotonic() + WAIT
    while not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"):
        assert time.monotonic() < deadline, "no multipart upload appeared in S3"
        time.sleep(0.2)
    page.driver.find_element(By.CSS_SELECTOR, "#uploads li .cancel").click()
    page.wait("return document.querySelector('#uploads li .state').textContent === 'Cancelled'")
    page.wait("return window.__calls.includes('POST /s3/abort-upload')", 30)

    assets = page.get("/api/assets")["assets"]
    assert len(assets) == 1 and assets[0]["status"] == "aborted", assets
    assert not page.driver.execute_script("return document.querySelector('#uploads [data-asset-id]')")
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"), "a pending upload remains in S3"
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0, "an object remains in S3"
    assert page.driver.execute_script("return localStorage.length") == 0, "the resume record outlived the cancel"


def test_resume_after_reload_sends_only_the_missing_parts(page, big_jpeg, tmp_path, disturber, s3, bucket):
    path = write(tmp_path, "resume.jpg", big_jpeg)
    page.driver.execute_script(
        "const d = arguments[0]; window.__redirect = url => /[?&]partNumber=1(&|$)/.test(url) ? null : d + '/hang';", disturber)
    page.pick(path)
    prefix = f"{page.workspace}/"
    deadline = time.monotonic() + WAIT
    while True:
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads") or []
        if uploads and s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get("Parts"):
            break
        assert time.monotonic() < deadline, "part 1 never reached S3"
        time.sleep(0.2)

    page.reload()  # the hanging PUTs die with the page; the upload stays in S3
    assert page.driver.execute_script("return localStorage.length") == 1, "no resume record"
    page.pick(path)
    ids = page.finished(1)
    puts = page.driver.execute_script("return window.__puts")
    calls = page.driver.execute_script("return window.__calls")
    count = -(-len(big_jpeg) // PART)
    assert part_numbers(puts) == list(range(2, count + 1)), f"sent again: {part_numbers(puts)}"
    assert "GET /s3/list-parts" in calls and "GET /s3/start-upload" not in calls, calls
    assert page.downloaded(ids["resume.jpg"]) == big_jpeg
    assert page.driver.execute_script("return localStorage.length") == 0
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_a_part_answering_500_once_is_retried(page, big_jpeg, tmp_path, disturber):
    page.driver.execute_script("""
        const d = arguments[0]; let failed = false;
        window.__redirect = url => {
          if (!failed && /[?&]partNumber=2(&|$)/.test(url)) { failed = true; return d + '/fail'; }
          return null;
        };""", disturber)
    page.pick(write(tmp_path, "retried.jpg", big_jpeg))
    ids = page.finished(1)
    puts = page.driver.execute_script("return window.__puts")
    count = -(-len(big_jpeg) // PART)
    assert part_numbers(puts) == sorted(list(range(1, count + 1)) + [2]), puts
    assert [p["redirected"] for p in puts if part_numbers([p]) == [2]] == [True, False]
    assert page.downloaded(ids["retried.jpg"]) == big_jpeg


def test_pause_then_cancel_aborts_the_paused_upload(page, big_jpeg, tmp_path, disturber, s3, bucket):
    from selenium.webdriver.common.by import By

    page.driver.execute_script(
        "const d = arguments[0]; window.__redirect = url => /[?&]partNumber=1(&|$)/.test(url) ? null : d + '/hang';", disturber)
    page.pick(write(tmp_path, "pause-me.jpg", big_jpeg))
    prefix = f"{page.workspace}/"
    deadline = time.monotonic() + WAIT
    while not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"):
        assert time.monotonic() < deadline, "no multipart upload appeared in S3"
        time.sleep(0.2)
    # The upload exists in S3 once CreateMultipartUpload returns, before the browser has
    # start-upload's answer: pause only once the client holds the uploadId (it asks for
    # part URLs with it), as a person pausing a running upload would.
    page.wait("return window.__calls.some(c => c.startsWith('GET /s3/get-upload-url'))")
    page.driver.find_element(By.CSS_SELECTOR, "#uploads li .pause").click()
    page.wait("return document.querySelector('#uploads li .state').textContent === 'Paused'")
    assert "POST /s3/abort-upload" not in page.driver.execute_script("return window.__calls")
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"), "a pause must keep the upload"
    page.driver.find_element(By.CSS_SELECTOR, "#uploads li .cancel").click()
    page.wait("return document.querySelector('#uploads li .state').textContent === 'Cancelled'")
    assert "POST /s3/abort-upload" in page.driver.execute_script("return window.__calls")
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads"), "a pending upload remains in S3"
    assert page.driver.execute_script("return localStorage.length") == 0


# --- where the token goes ---------------------------------------------------------------

class Collector(BaseHTTPRequestHandler):
    """Another origin on loopback (HTTPS, the stack's certificate) that records every
    request reaching it. It answers CORS preflights with yes and the rest with an empty
    asset list, so a page that would send it a token gets as far as sending it."""

    seen = []

    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.seen.append({"method": self.command, "path": self.path, "authorization": self.headers.get("Authorization")})
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self):
        self.answer(204)

    def do_GET(self):
        self.answer(200, b'{"assets":[],"next":null}')

    do_POST = do_PUT = do_DELETE = do_GET


@pytest.fixture
def collector():
    Collector.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    state = os.path.dirname(os.path.dirname(CERTIFICATE))
    context.load_cert_chain(CERTIFICATE, os.path.join(state, "tls", "key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def spy():
    """A Chromium of its own that logs every request it sends, headers included."""
    browser = chromium(performance=True)
    yield browser
    browser.quit()


def sent(browser):
    """The requests the browser sent since the last call: [(url, Authorization or None)]."""
    out = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
            out.append((request["url"], headers.get("authorization")))
    return out


def origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def wait_for(browser, script, timeout=30):
    deadline = time.monotonic() + timeout
    while not browser.execute_script(script):
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.1)


def fresh(browser, base_url):
    """The page's origin with nothing in sessionStorage, and the request log emptied."""
    browser.get("about:blank")
    browser.get(base_url + "/")
    wait_for(browser, "return document.readyState === 'complete'")
    browser.execute_script("sessionStorage.clear(); localStorage.clear()")
    browser.get("about:blank")
    sent(browser)


LISTED = "return /No assets yet|Could not list/.test(document.querySelector('#assets-status').textContent)"


def test_api_parameter_is_ignored_and_a_pasted_token_goes_to_this_origin_only(spy, base_url, secret, collector):
    """?api= once made the page send the pasted token to any server: now it is ignored,
    and every request that carries the token goes to the page's own origin."""
    token = make_token(secret, "paster", [424242])
    fresh(spy, base_url)
    spy.get(f"{base_url}/?api={quote(collector, safe='')}")
    wait_for(spy, "return document.readyState === 'complete' && !document.querySelector('#sign-in').hidden")
    spy.find_element("css selector", "#token-input").send_keys(token)
    spy.find_element("css selector", "#workspace-input").send_keys("424242")
    spy.find_element("css selector", "#sign-in-form [type=submit]").click()
    wait_for(spy, LISTED)
    assert spy.find_element("css selector", "#assets-status").text == "No assets yet."
    spy.refresh()  # a reload, too, keeps to this origin
    wait_for(spy, LISTED)
    time.sleep(1)  # anything still on its way to the other origin
    requests_sent = sent(spy)
    carrying = [url for url, auth in requests_sent if auth == f"Bearer {token}"]
    assert carrying, requests_sent
    assert all(origin(url) == base_url for url in carrying), carrying
    assert not [url for url, _ in requests_sent if origin(url) == collector], requests_sent
    assert Collector.seen == [], f"the other origin was reached: {Collector.seen}"
    assert spy.execute_script("return Object.keys(sessionStorage).filter(k => k.includes('api'))") == []
    # The page said so, and the address bar no longer names the other server.
    spy.get(f"{base_url}/?api={quote(collector, safe='')}")
    wait_for(spy, "return document.readyState === 'complete' && !document.querySelector('#picker').hidden")
    assert "?api=" in spy.find_element("css selector", "#notice").text
    assert "api=" not in spy.current_url, spy.current_url
    wait_for(spy, LISTED)
    assert Collector.seen == [], f"the other origin was reached: {Collector.seen}"


def test_token_in_the_query_is_ignored(spy, base_url, secret):
    """?token=&workspaceId= signed a victim into whatever workspace the link named."""
    attacker = make_token(secret, "attacker", [434343])
    fresh(spy, base_url)
    spy.get(f"{base_url}/?token={attacker}&workspaceId=434343")
    wait_for(spy, "return document.readyState === 'complete'")
    time.sleep(1)
    assert spy.execute_script("return !document.querySelector('#sign-in').hidden && document.querySelector('#picker').hidden"), \
        "the page signed in with a token from its query string"
    notice = spy.find_element("css selector", "#notice").text
    assert "?token=" in notice and "ignored" in notice, notice
    assert spy.find_element("css selector", "#token-input").get_attribute("value") == ""
    assert attacker not in spy.current_url and "token" not in spy.current_url, spy.current_url
    assert not [url for url, auth in sent(spy) if auth == f"Bearer {attacker}"], "the query's token was sent"
    assert attacker not in json.dumps(spy.execute_script("return {...sessionStorage, ...localStorage}"))


def test_token_in_the_fragment_is_offered_then_used_and_leaves_the_address_bar(spy, base_url, secret):
    victim = make_token(secret, "victim", [454545])
    linked = make_token(secret, "linked", [464646])
    fresh(spy, base_url)
    spy.get(base_url + "/")
    wait_for(spy, "return document.readyState === 'complete' && !document.querySelector('#sign-in').hidden")
    spy.find_element("css selector", "#token-input").send_keys(victim)
    spy.find_element("css selector", "#workspace-input").send_keys("454545")
    spy.find_element("css selector", "#sign-in-form [type=submit]").click()
    wait_for(spy, LISTED)
    sent(spy)

    # A link with a token in its fragment, opened in the signed-in tab (a fresh load).
    spy.get("about:blank")
    spy.get(f"{base_url}/#token={linked}&workspaceId=464646")
    wait_for(spy, "return document.readyState === 'complete'")
    assert spy.current_url == base_url + "/", f"the token stayed in the address bar: {spy.current_url}"
    # Offered, not used: whoever writes a link must not sign the reader into their account.
    wait_for(spy, "return !document.querySelector('#offer').hidden")
    assert "linked" in spy.find_element("css selector", "#offer").text and "464646" in spy.find_element("css selector", "#offer").text
    assert spy.find_element("css selector", "#token-input").get_attribute("value") == linked
    assert spy.find_element("css selector", "#workspace-input").get_attribute("value") == "464646"
    assert spy.find_element("css selector", "#keep-session").is_displayed()
    time.sleep(1)
    assert not [url for url, auth in sent(spy) if auth == f"Bearer {linked}"], "the link's token was used unasked"
    assert spy.execute_script("return sessionStorage.getItem('assetd.token')") == victim

    spy.find_element("css selector", "#use-token").click()
    wait_for(spy, "return !document.querySelector('#picker').hidden")
    wait_for(spy, LISTED)
    assert spy.find_element("css selector", "#assets-status").text == "No assets yet."
    assert spy.find_element("css selector", "#workspace-label").text == "464646"
    carrying = [url for url, auth in sent(spy) if auth == f"Bearer {linked}"]
    assert carrying and all(origin(url) == base_url for url in carrying), carrying
    assert spy.execute_script("return sessionStorage.getItem('assetd.token')") == linked
    assert linked not in json.dumps(spy.execute_script("return {...localStorage}"))
    assert "token" not in spy.current_url

    # The same link opened in the page already there (only the fragment changes): the
    # address bar is cleared as well, and the token waits for the user again.
    spy.execute_script("location.hash = arguments[0]", f"token={victim}&workspaceId=454545")
    wait_for(spy, "return !document.querySelector('#offer').hidden")
    assert "token" not in spy.current_url, spy.current_url
    assert spy.execute_script("return sessionStorage.getItem('assetd.token')") == linked


def test_no_unsafe_header_error_in_the_console_after_an_upload(page, tmp_path):
    """Every part PUT logged 'Refused to get unsafe header "Retry-After"': the bucket's
    CORS rules expose ETag only, and the client asked for Retry-After all the same."""
    page.driver.get_log("browser")  # what earlier tests left
    data = as_jpeg(os.urandom(PART + 512 * 1024))  # two parts, multipart
    page.pick(write(tmp_path, "console.jpg", data))
    page.finished(1)
    assert len(page.driver.execute_script("return window.__puts")) == 2
    console = page.driver.get_log("browser")
    print(console)
    refused = [e["message"] for e in console if "Refused to get unsafe header" in e["message"]]
    assert not refused, refused


@pytest.mark.s3_wiring
def test_page_csp_connects_to_this_origin_and_the_s3_endpoint_only(base_url, alice):
    r = requests.get(base_url + "/", timeout=10, verify=CERTIFICATE)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    directives = {d.split()[0]: d.split()[1:] for d in r.headers["Content-Security-Policy"].split(";") if d.strip()}
    # The S3 endpoint is the one presigned URLs name.
    started = start_upload(alice, fileSize=1024)
    url = alice.get("/s3/get-upload-url", workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"],
                    PartNumber=1).json()["url"]
    alice.post("/s3/abort-upload", {"workspaceId": 1, "assetId": started["assetId"], "uploadId": started["uploadId"]})
    s3 = origin(url)
    assert directives["connect-src"] == ["'self'", s3], directives["connect-src"]
    for directive in ("connect-src", "img-src"):
        wild = [s for s in directives[directive] if s in ("https:", "http:", "*") or "*" in s]
        assert not wild, (directive, wild)


# Records each part PUT's Content-MD5 by part number, and counts the Web Workers started.
CHECKSUM_RECORDER = """
window.__md5s = []; window.__workers = 0;
const open = XMLHttpRequest.prototype.open, set = XMLHttpRequest.prototype.setRequestHeader;
XMLHttpRequest.prototype.open = function (method, url, ...rest) { this.__url = String(url); return open.call(this, method, url, ...rest); };
XMLHttpRequest.prototype.setRequestHeader = function (name, value) {
  if (name.toLowerCase() === 'content-md5') window.__md5s.push([Number(new URL(this.__url).searchParams.get('partNumber')), value]);
  return set.call(this, name, value);
};
const Worker = window.Worker;
window.Worker = function (...args) { window.__workers++; return new Worker(...args); };
"""


def test_a_30_mb_file_goes_with_per_part_checksums(page, tmp_path):
    """The demo page with its checksum box on (the default): each part's MD5 computed in
    a Web Worker, signed into its URL (content-md5;host) and sent as Content-MD5; the
    object's ETag is the MD5 of the parts' MD5s, and the bytes read back are the file's."""
    import hashlib

    data = as_jpeg(os.urandom(30 * 1024 * 1024))
    page.driver.get_log("browser")  # what earlier tests left
    page.driver.execute_script(CHECKSUM_RECORDER)
    assert page.driver.execute_script("return document.querySelector('#checksums').checked")
    page.pick(write(tmp_path, "checked.jpg", data))
    asset_id = page.finished(1)["checked.jpg"]

    puts = page.driver.execute_script("return window.__puts")
    count = -(-len(data) // PART)
    assert part_numbers(puts) == list(range(1, count + 1)), puts
    for put in puts:
        assert "X-Amz-SignedHeaders=content-md5%3Bhost" in put["url"], put["url"]
    sent = dict(page.driver.execute_script("return window.__md5s"))
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    assert sent == {n: base64.b64encode(hashlib.md5(p).digest()).decode() for n, p in enumerate(parts, 1)}
    assert page.driver.execute_script("return window.__workers") >= 1, "the MD5s were not computed in a Web Worker"

    asset = page.get(f"/api/assets/{asset_id}")["asset"]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
    assert asset["status"] == "ready" and asset["etag"].strip('"') == expected, asset
    assert page.downloaded(asset_id) == data, "the bytes read back differ"
    errors = [e for e in page.driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_the_search_box_and_type_filter_narrow_the_list(page, tmp_path):
    """The demo page's search box and type filter ask GET /api/assets with q and type."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from test_direct import images

    files = images()
    ids = {}
    for name, data in (("beach_2024.png", files["png"]), ("Café menu.pdf", files["pdf"]), ("sunset.jpg", files["jpeg"])):
        r = page.api.post(page.base + "/api/assets/upload", params={"workspaceId": page.workspace},
                          files={"file": (name, data, "application/octet-stream")}, timeout=60, verify=CERTIFICATE)
        assert r.status_code == 200, r.text
        ids[name] = r.json()["asset"]["id"]
    r = page.api.patch(page.base + f"/api/assets/{ids['sunset.jpg']}", params={"workspaceId": page.workspace},
                       json={"title": "Evening at the beach", "tags": ["holiday", "Bretagne"]}, timeout=30, verify=CERTIFICATE)
    assert r.status_code == 200, r.text
    page.driver.find_element(By.CSS_SELECTOR, "#refresh").click()
    listed = "return [...document.querySelectorAll('#assets .asset .name')].map(e => e.textContent).join('|')"

    def shows(names):
        page.wait(listed + f" === {'|'.join(names)!r}", 30)

    shows(["sunset.jpg", "Café menu.pdf", "beach_2024.png"])
    box = page.driver.find_element(By.CSS_SELECTOR, "#search-input")
    box.send_keys("bea")
    # Both begin a word with "bea" (the file name's, the title's): newest first.
    shows(["sunset.jpg", "beach_2024.png"])
    box.clear()
    box.send_keys("cafe")
    shows(["Café menu.pdf"])
    box.clear()
    box.send_keys("nothing-like-this")
    page.wait("return document.querySelector('#assets-status').textContent === 'No asset matches.'", 30)
    box.clear()
    Select(page.driver.find_element(By.CSS_SELECTOR, "#type-filter")).select_by_value("pdf")
    shows(["Café menu.pdf"])
    Select(page.driver.find_element(By.CSS_SELECTOR, "#type-filter")).select_by_value("")
    shows(["sunset.jpg", "Café menu.pdf", "beach_2024.png"])
    tags = page.driver.execute_script(
        f"return [...document.querySelectorAll(\"#assets [data-listed-asset-id='{ids['sunset.jpg']}'] .tag\")].map(e => e.textContent)")
    assert tags == ["holiday", "Bretagne"]
    box.send_keys("holi")
    shows(["sunset.jpg"])
    # The media metadata the thumbnail's pass recorded, once it has (the list is asked again).
    media = f"return (document.querySelector(\"#assets [data-listed-asset-id='{ids['sunset.jpg']}'] .media:not([hidden])\") || {{}}).textContent"
    deadline = time.monotonic() + 60
    while page.driver.execute_script(media) != "64 × 48" and time.monotonic() < deadline:
        page.driver.find_element(By.CSS_SELECTOR, "#refresh").click()
        time.sleep(1)
    assert page.driver.execute_script(media) == "64 × 48"
    shots = os.path.join(os.environ.get("ASSETD_STATE_DIR", str(tmp_path)), "screenshots")
    os.makedirs(shots, exist_ok=True)
    path = os.path.join(shots, "page-search.png")
    page.driver.save_screenshot(path)
    assert os.path.getsize(path) > 10_000
    print(f"screenshot: {path}")
