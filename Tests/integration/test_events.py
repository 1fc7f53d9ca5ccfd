"""Events (issue 19): the transactional outbox delivered to webhook receivers by the Standard
Webhooks specification (verified with the `standardwebhooks` package), and to Typesense
(a recorder of its wire format). A private assetd (release binary, real S3) for each test,
with receivers on ephemeral loopback ports. In scripts/test's PostgreSQL pass its records
are in a fresh schema of the pass's PostgreSQL (`pass_database`), so that the outbox's
PostgreSQL statements (SKIP LOCKED claims, fenced results) are what these tests drive; the
last tests run two instances on one schema there."""
import base64
import io
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from private_assetd import POSTGRES_URL, PrivateAssetd, form, fresh_schema_url, pass_database, wait_until
from typesense_recorder import TypesenseRecorder


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def png_bytes(seed=3):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64 + seed, 48), (seed * 40 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


class Receiver:
    """A webhook endpoint: verifies each delivery with `standardwebhooks`, records it, and
    answers the statuses it is given in turn (then 200), each after `hold` seconds."""

    def __init__(self, secret, answers=(), hold=0.0):
        self.verifier = Webhook(secret)
        self.answers = list(answers)
        self.hold = hold
        self.received = []   # dicts: id, timestamp, body, event, verified, status
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = receiver.verifier.verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    event, verified = None, False
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.append({"id": headers.get("webhook-id"), "timestamp": headers.get("webhook-timestamp"),
                                              "body": body, "event": event, "verified": verified, "status": status,
                                              "content_type": headers.get("content-type")})
                time.sleep(receiver.hold)
                try:
                    self.send_response(status if verified else 400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender died while we held the answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/assetd"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        with self.lock:
            return list(self.received)

    def delivered(self):
        """Each event id once (the first copy), in the order they arrived."""
        seen, out = set(), []
        for item in self.events():
            if item["id"] not in seen and item["verified"]:
                seen.add(item["id"])
                out.append(item)
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory() as path:
        yield path


def private_assetd(workdir, **settings):
    """A private assetd, not started, on the pass's database (SQLite, or PostgreSQL)."""
    return PrivateAssetd(workdir, **dict(pass_database(), ASSETD_THREADS=4, **settings))


def start_private(workdir, **settings):
    instance = private_assetd(workdir, **settings).start()
    if POSTGRES_URL:
        assert "records in PostgreSQL" in instance.log(), "the private assetd is not on the pass's PostgreSQL"
    return instance


def upload(private, data, name, asset_id=None):
    body, content_type = form(data, filename=name)
    query = "workspaceId=1" + (f"&assetId={asset_id}" if asset_id else "")
    r = private.request("POST", "/api/assets/upload", query, body, content_type, timeout=120)
    assert r is not None and r.status == 200, r and r.body[:300]
    return r.json()["asset"]


def settled_thumbnail(private, asset_id):
    def status():
        r = private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1")
        state = r.json()["asset"]["thumbnail"]["status"]
        return state if state in ("ready", "failed", "none") else None
    return wait_until(f"asset {asset_id}'s thumbnail", status, seconds=60)


def run_cli(private, *args):
    env = dict(private.env)
    return subprocess.run([os.environ["ASSETD_BIN"], *args], env=env, capture_output=True, text=True, timeout=60)


def by_asset(items):
    out = {}
    for item in items:
        out.setdefault(item["event"]["data"]["assetId"], []).append(item["event"]["type"])
    return out


def test_a_receiver_sees_every_event_signed_and_in_order_per_asset(workdir):
    old, new = new_secret(), new_secret()
    receiver = Receiver(new)   # knows only the new secret of a rotation: both must sign
    private = start_private(workdir, ASSETD_WEBHOOK_URLS=receiver.url, ASSETD_WEBHOOK_SECRET=f"{old},{new}")
    try:
        a = upload(private, png_bytes(1), "beach_2024.png")
        b = upload(private, png_bytes(2), "café.png")
        thumb_a1 = settled_thumbnail(private, a["id"])
        thumb_b = settled_thumbnail(private, b["id"])
        upload(private, png_bytes(4), "beach_2025.png", asset_id=a["id"])
        thumb_a2 = settled_thumbnail(private, a["id"])
        r = private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={b['id']}")
        assert r.status == 200, r.body
        expected = {
            a["id"]: ["asset.ready", f"thumbnail.{thumb_a1}", "asset.version_added", f"thumbnail.{thumb_a2}"],
            b["id"]: ["asset.ready", f"thumbnail.{thumb_b}", "asset.deleted"],
        }
        expected = {k: [t for t in v if t != "thumbnail.none"] for k, v in expected.items()}
        wait_until("every event", lambda: by_asset(receiver.delivered()) == expected, seconds=60)
        items = receiver.events()
        assert all(item["verified"] for item in items), [i for i in items if not i["verified"]]
        assert all(item["content_type"] == "application/json" for item in items)
        for item in receiver.delivered():
            assert item["id"].startswith("evt_")
            event = json.loads(item["body"])
            assert set(event) == {"type", "timestamp", "data"}
            data = event["data"]
            assert data["workspaceId"] == "1"
            assert isinstance(data["version"], int)
            assert len(item["body"]) < 20_000
        version_added = next(i["event"] for i in receiver.delivered() if i["event"]["type"] == "asset.version_added")
        assert version_added["data"]["version"] == 2 and version_added["data"]["previousVersion"] == 1
        assert version_added["data"]["fileName"] == "beach_2025.png"
        ready_b = next(i["event"] for i in receiver.delivered() if i["event"]["data"]["assetId"] == b["id"])
        assert ready_b["data"]["fileName"] == "café.png" and ready_b["data"]["fileType"] == "image/png"
        # /metrics: the backlog drained, and deliveries counted by result.
        metrics = private.request("GET", "/metrics", token=False).body.decode()
        assert "assetd_event_backlog 0" in metrics
        assert 'assetd_event_deliveries_total{sink="webhook-1",result="delivered"}' in metrics or \
               'assetd_event_deliveries_total{result="delivered",sink="webhook-1"}' in metrics, metrics
        # Nothing left to list.
        listed = run_cli(private, "events")
        assert listed.returncode == 0 and "no events waiting" in listed.stdout, listed
        assert old not in private.log() and new not in private.log()
    finally:
        private.close()
        receiver.close()


def test_kill_9_during_a_delivery_loses_no_event_and_duplicates_keep_their_id(workdir):
    secret = new_secret()
    receiver = Receiver(secret, hold=4)   # holds each answer: assetd is killed while it waits
    # A claim's lease is the webhook's 15 s timeout and ASSETD_EVENT_CLAIM_MARGIN (30 s by
    # default; 1 here, so the resend comes after 16 s instead of 45).
    private = start_private(workdir, ASSETD_WEBHOOK_URLS=receiver.url, ASSETD_WEBHOOK_SECRET=secret, ASSETD_THUMBNAILS="off",
                            ASSETD_EVENT_CLAIM_MARGIN="1")
    try:
        ids = [upload(private, png_bytes(i), f"p{i}.png")["id"] for i in range(1, 5)]
        wait_until("a delivery in flight", lambda: receiver.events(), seconds=20)
        private.kill()
        receiver.hold = 0
        private.start()
        # What was in flight is sent again once its claim's lease (16 s here) ends.
        wait_until("every asset.ready", lambda: sorted(by_asset(receiver.delivered())) == sorted(ids), seconds=90)

        def resent():
            seen = [item["id"] for item in receiver.events()]
            return len(seen) > len(set(seen))
        # The others are claimed one by one after the restart and may all be delivered
        # before the lease of the one in flight at the kill ends: wait for its copy too.
        wait_until("the delivery in flight at the kill sent again", resent, seconds=90)
        items = receiver.events()
        assert all(item["verified"] for item in items)
        copies = {}
        for item in items:
            copies.setdefault(item["id"], []).append(item["body"])
        assert any(len(bodies) > 1 for bodies in copies.values()), "the delivery in flight at the kill was not sent again"
        for event_id, bodies in copies.items():
            assert len(set(bodies)) == 1, f"{event_id} was sent with different bodies"
        assert all(types == ["asset.ready"] for types in by_asset(receiver.delivered()).values())
    finally:
        private.close()
        receiver.close()


def test_a_receiver_answering_500_then_410_is_retried_then_disabled(workdir):
    secret = new_secret()
    receiver = Receiver(secret, answers=[500, 410])
    private = start_private(workdir, ASSETD_WEBHOOK_URLS=receiver.url, ASSETD_WEBHOOK_SECRET=secret, ASSETD_THUMBNAILS="off")
    try:
        first = upload(private, png_bytes(1), "one.png")
        wait_until("the retry after the 500", lambda: len(receiver.events()) >= 2, seconds=30)
        items = receiver.events()
        assert [i["status"] for i in items] == [500, 410]
        assert items[0]["id"] == items[1]["id"] and items[0]["body"] == items[1]["body"]
        assert int(items[1]["timestamp"]) >= int(items[0]["timestamp"])
        wait_until("the endpoint disabled", lambda: "410 Gone" in private.log(), seconds=10)
        # Disabled: a later event is not sent to it.
        upload(private, png_bytes(2), "two.png")
        time.sleep(3)
        assert len(receiver.events()) == 2
        dead = run_cli(private, "events", "--dead")
        assert dead.returncode == 0, dead.stderr
        event_id = items[0]["id"]
        assert event_id in dead.stdout and "asset.ready" in dead.stdout and "410 Gone" in dead.stdout, dead.stdout
        # An operator sends it again (the receiver now answers 200): same id, endpoint enabled.
        again = run_cli(private, "events", "--redeliver", event_id)
        assert again.returncode == 0 and "queued" in again.stdout, again
        wait_until("the redelivery", lambda: len(receiver.events()) >= 3, seconds=20)
        third = receiver.events()[2]
        assert third["id"] == event_id and third["status"] == 200 and third["verified"]
        assert json.loads(third["body"])["data"]["assetId"] == first["id"]
        assert "no dead events" in run_cli(private, "events", "--dead").stdout
        bad = run_cli(private, "events", "--redeliver", "evt_x")
        assert bad.returncode != 0 and "--redeliver takes an event id" in bad.stderr
    finally:
        private.close()
        receiver.close()


def test_a_bad_webhook_setting_stops_start_up_with_one_line(workdir):
    private = PrivateAssetd(workdir, ASSETD_WEBHOOK_URLS="http://127.0.0.1:9150/h", ASSETD_WEBHOOK_SECRET="whsec_t0psecret")
    try:
        result = subprocess.run([os.environ["ASSETD_BIN"], "serve"], env=private.env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 78
        assert "ASSETD_WEBHOOK_SECRET" in result.stderr and "t0psecret" not in result.stderr
    finally:
        private.close()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawListener:
    """A TCP listener on loopback that records every connection and every byte sent on it."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks/assetd"
        self.connections, self.received, self.running = 0, b"", True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            with conn:
                self.connections += 1
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(4096):
                        self.received += chunk
                except OSError:
                    pass

    def close(self):
        self.running = False
        self.thread.join(timeout=10)
        self.server.close()


def test_check_config_probes_each_sink_as_serve_would(workdir):
    """check-config connects to each webhook receiver (nothing sent: the receiver records no
    request), reads Typesense's collection with the configured key (404 before setup-search,
    401 with a wrong key), and prints neither keys, secrets nor a URL's query."""
    recorder = TypesenseRecorder(api_key="ts-check-key")
    secret = new_secret()
    receiver = RawListener()
    closed = closed_port()
    hooks = f"{receiver.url}?token=q5ecret,http://127.0.0.1:{closed}/hook,http://assetd-nowhere.invalid/hook"
    settings = dict(ASSETD_WEBHOOK_URLS=hooks, ASSETD_WEBHOOK_SECRET=secret, ASSETD_TYPESENSE_URL=recorder.url,
                    ASSETD_TYPESENSE_API_KEY="ts-check-key", ASSETD_TYPESENSE_COLLECTION="assets", ASSETD_THUMBNAILS="off")
    private = private_assetd(workdir, **settings)
    try:
        def check(**overrides):
            env = dict(private.env, **overrides)
            result = subprocess.run([os.environ["ASSETD_BIN"], "check-config"], env=env, capture_output=True, text=True, timeout=60)
            for hidden in ("q5ecret", "ts-check-key", "wrong-key", secret, secret[len("whsec_"):]):
                assert hidden not in result.stdout + result.stderr, hidden
            return result, [line for line in result.stdout.splitlines() if line[5:].startswith(("webhook:", "typesense:"))]

        first, sinks = check()
        assert first.returncode == 1, first.stdout
        assert sinks[0] == f"OK   webhook: {receiver.url}?(query hidden) accepts connections (nothing was sent)", sinks
        assert sinks[1].startswith(f"FAIL webhook: http://127.0.0.1:{closed}/hook: no answer: Couldn't connect"), sinks
        assert sinks[2].startswith("FAIL webhook: http://assetd-nowhere.invalid/hook: no answer"), sinks
        assert sinks[3] == (f"FAIL typesense: {recorder.url} collection assets does not exist (HTTP 404): "
                            "`assetd setup-search` creates it"), sinks
        assert len(sinks) == 4, sinks
        wait_until("the probe's connection", lambda: receiver.connections >= 1, 5)
        assert receiver.received == b"", receiver.received[:200]
        assert [(m, p, s) for m, p, _, _, s in recorder.requests] == [("GET", "/collections/assets", 404)]

        made = run_cli(private, "setup-search")
        assert made.returncode == 0, made.stderr
        _, sinks = check()
        assert sinks[3] == f"OK   typesense: {recorder.url} collection assets exists and ASSETD_TYPESENSE_API_KEY may read it", sinks
        _, sinks = check(ASSETD_TYPESENSE_API_KEY="wrong-key")
        assert sinks[3] == (f"FAIL typesense: {recorder.url} collection assets: Typesense refused ASSETD_TYPESENSE_API_KEY (HTTP 401): "
                            "a wrong key, or one without access to this collection"), sinks
        wait_until("every probe's connection", lambda: receiver.connections >= 3, 5)
        assert receiver.received == b"", receiver.received[:200]
    finally:
        private.close()
        recorder.close()
        receiver.close()


def test_typesense_gets_valid_imports_and_a_delete(workdir):
    recorder = TypesenseRecorder(api_key="ts-test-key")
    settings = dict(ASSETD_TYPESENSE_URL=recorder.url, ASSETD_TYPESENSE_API_KEY="ts-test-key", ASSETD_TYPESENSE_COLLECTION="assets",
                    ASSETD_THUMBNAILS="off")
    private = private_assetd(workdir, **settings)
    try:
        made = run_cli(private, "setup-search")
        assert made.returncode == 0 and "created" in made.stdout, (made.stdout, made.stderr)
        again = run_cli(private, "setup-search")
        assert again.returncode == 0 and "exists already" in again.stdout, again
        assert recorder.collections["assets"]["default_sorting_field"] == "createdAt"
        recorder.fail_next_documents = 1   # the first document's line says success: false
        private.start()
        a = upload(private, png_bytes(1), "beach.png")
        b = upload(private, png_bytes(2), "dune.png")
        wait_until("both documents", lambda: {a["id"], b["id"]} <= set(recorder.documents["assets"]), seconds=30)
        assert any(not line["success"] for _, _, _, lines in recorder.imports for line in lines), "no refused line was answered"
        for name, action, docs, lines in recorder.imports:
            assert action == "upsert"
        doc = recorder.documents["assets"][a["id"]]
        assert doc["workspaceId"] == 1 and doc["fileName"] == "beach.png" and doc["type"] == "image" and doc["status"] == "ready"
        r = private.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={a['id']}")
        assert r.status == 200
        wait_until("the delete", lambda: ("assets", a["id"], 200) in recorder.deletes, seconds=30)
        assert a["id"] not in recorder.documents["assets"] and b["id"] in recorder.documents["assets"]
        assert all(status != 401 for *_, status in recorder.requests)
        assert "ts-test-key" not in private.log()
    finally:
        private.close()
        recorder.close()


def patch(private, asset_id, fields):
    r = private.request("PATCH", f"/api/assets/{asset_id}", "workspaceId=1", json.dumps(fields).encode(), "application/json")
    assert r is not None and r.status == 200, r and r.body[:300]
    return r.json()["asset"]


def test_a_patch_sends_asset_updated_with_the_new_title_and_tags_after_asset_ready(workdir):
    secret = new_secret()
    receiver = Receiver(secret)
    recorder = TypesenseRecorder(api_key="ts-test-key")
    private = private_assetd(workdir, ASSETD_WEBHOOK_URLS=receiver.url, ASSETD_WEBHOOK_SECRET=secret, ASSETD_THUMBNAILS="off",
                             ASSETD_TYPESENSE_URL=recorder.url, ASSETD_TYPESENSE_API_KEY="ts-test-key", ASSETD_TYPESENSE_COLLECTION="assets")
    try:
        assert run_cli(private, "setup-search").returncode == 0
        private.start()
        a = upload(private, png_bytes(1), "beach.png")
        wait_until("the first document", lambda: a["id"] in recorder.documents["assets"], seconds=30)
        assert recorder.documents["assets"][a["id"]].get("title") is None
        patch(private, a["id"], {"title": "Sunset at the dune", "tags": ["holiday", "sea"]})
        patch(private, a["id"], {"tags": ["holiday"]})
        # Refused PATCHes write nothing: an unknown asset, a bad body.
        r = private.request("PATCH", "/api/assets/999999", "workspaceId=1", b'{"title": "x"}', "application/json")
        assert r.status == 404, r.body
        r = private.request("PATCH", f"/api/assets/{a['id']}", "workspaceId=1", b'{"title": 5}', "application/json")
        assert r.status == 400, r.body
        expected = ["asset.ready", "asset.updated", "asset.updated"]
        wait_until("both updates", lambda: by_asset(receiver.delivered()) == {a["id"]: expected}, seconds=30)
        delivered = receiver.delivered()
        assert all(item["verified"] for item in receiver.events())
        ids = [int(item["id"][4:]) for item in delivered]
        assert ids == sorted(ids), "asset.updated was not delivered after asset.ready, in order"
        first, second = (item["event"]["data"] for item in delivered[1:])
        assert (first["title"], first["tags"]) == ("Sunset at the dune", ["holiday", "sea"])
        assert (second["title"], second["tags"]) == ("Sunset at the dune", ["holiday"])
        assert second["assetId"] == a["id"] and second["status"] == "ready" and second["fileName"] == "beach.png"

        def indexed():
            document = recorder.documents["assets"].get(a["id"])
            return document and document.get("title") == "Sunset at the dune" and document.get("tags") == ["holiday"]
        wait_until("the new title and tags in Typesense", indexed, seconds=30)
        assert all(action == "upsert" for _, action, _, _ in recorder.imports)
        time.sleep(1)
        assert len(receiver.delivered()) == 3, "a refused PATCH wrote an event"
    finally:
        private.close()
        receiver.close()
        recorder.close()


def sink_line(listing, url):
    lines = [line for line in listing.splitlines() if url in line]
    assert len(lines) == 1, listing
    return lines[0].split("\t")


def test_a_host_keeps_sinks_it_does_not_know_until_an_operator_retires_one(workdir):
    secret = new_secret()
    old, new = Receiver(secret), Receiver(secret)
    private = start_private(workdir, ASSETD_WEBHOOK_URLS=old.url, ASSETD_WEBHOOK_SECRET=secret, ASSETD_THUMBNAILS="off")
    try:
        a = upload(private, png_bytes(1), "one.png")
        wait_until("the first event", lambda: len(old.delivered()) == 1, seconds=30)
        private.stop()
        # Restarted with other settings, as a second host or a rolling change has them: the
        # old endpoint stays a sink (another host may deliver it), and still gets events.
        private.start(ASSETD_WEBHOOK_URLS=new.url)
        b = upload(private, png_bytes(2), "two.png")
        wait_until("the new endpoint's event", lambda: [i["event"]["data"]["assetId"] for i in new.delivered()] == [b["id"]], seconds=30)
        # The new endpoint's delivery is recorded just after the receiver answers.
        wait_until("the delivery recorded", lambda: sink_line(run_cli(private, "events", "--sinks").stdout, new.url)[2] == "0", seconds=10)
        listed = run_cli(private, "events", "--sinks")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("ID\tSTATE\tPENDING\tDEAD\tSINK\n"), listed.stdout
        old_line, new_line = sink_line(listed.stdout, old.url), sink_line(listed.stdout, new.url)
        assert old_line[1:4] == ["active", "1", "0"] and new_line[1:4] == ["active", "0", "0"], listed.stdout
        waiting = run_cli(private, "events")
        assert waiting.returncode == 0, (waiting.returncode, waiting.stderr)
        assert old.url in waiting.stdout and "asset.ready" in waiting.stdout, waiting.stdout

        sink_id = old_line[0]
        assert sink_id.startswith("sink_"), old_line
        retired = run_cli(private, "events", "--retire-sink", sink_id)
        assert retired.returncode == 0 and "retired" in retired.stdout and old.url in retired.stdout, retired
        listed = run_cli(private, "events", "--sinks").stdout
        assert sink_line(listed, old.url)[1:4] == ["retired", "0", "1"], listed
        assert "no events waiting" in run_cli(private, "events").stdout
        dead = run_cli(private, "events", "--dead").stdout
        assert "retired" in dead and old.url in dead, dead
        # Retired: later events are not queued for it.
        c = upload(private, png_bytes(3), "three.png")
        wait_until("the next event", lambda: len(new.delivered()) == 2, seconds=30)
        assert new.delivered()[1]["event"]["data"]["assetId"] == c["id"]
        assert sink_line(run_cli(private, "events", "--sinks").stdout, old.url)[1:4] == ["retired", "0", "1"]
        assert len(old.events()) == 1 and old.delivered()[0]["event"]["data"]["assetId"] == a["id"]
        # By name too; unknown ones and bad combinations are refused with one line.
        again = run_cli(private, "events", "--retire-sink", old.url)
        assert again.returncode == 0 and "already retired" in again.stdout, again
        unknown = run_cli(private, "events", "--retire-sink", "sink_0123456789")
        assert unknown.returncode != 0 and "no sink sink_0123456789" in unknown.stderr, unknown
        both = run_cli(private, "events", "--retire-sink", sink_id, "--dead")
        assert both.returncode != 0 and "--retire-sink" in both.stderr, both
        help_text = run_cli(private, "events", "--help").stdout
        assert "--sinks" in help_text and "--retire-sink" in help_text
    finally:
        private.close()
        old.close()
        new.close()


needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="two instances need PostgreSQL (scripts/test's PostgreSQL pass)")


def deliveries_by_host(host, label="webhook-1"):
    import re
    metrics = host.request("GET", "/metrics", token=False).body.decode()
    total = 0
    for line in metrics.splitlines():
        if line.startswith("assetd_event_deliveries_total{") and f'sink="{label}"' in line and 'result="delivered"' in line:
            total += int(float(re.split(r"\s+", line)[-1]))
    return total


@needs_postgres
def test_two_instances_on_one_postgres_share_the_deliveries_each_event_once_in_order(workdir):
    secret = new_secret()
    shared, only_b = Receiver(secret, hold=0.05), Receiver(secret)
    database = fresh_schema_url("ev_")
    with tempfile.TemporaryDirectory() as other:
        base = dict(ASSETD_DATABASE=database, ASSETD_THREADS=4, ASSETD_WEBHOOK_SECRET=secret, ASSETD_THUMBNAILS="off")
        # Different settings on each host: B also delivers to `only_b`. B starts first, so a
        # host that retired the sinks it does not know (before M3's fix) would starve it.
        b = PrivateAssetd(other, ASSETD_WEBHOOK_URLS=f"{shared.url},{only_b.url}", **base)
        a = PrivateAssetd(workdir, ASSETD_WEBHOOK_URLS=shared.url, **base)
        a.s3.delete_bucket(Bucket=a.bucket)
        a.bucket = a.env["AWS_BUCKET"] = b.bucket
        hosts = [b.start(), a.start()]
        try:
            expected = {}
            for i in range(12):
                asset = upload(hosts[i % 2], png_bytes(i + 1), f"p{i}.png")
                expected[asset["id"]] = ["asset.ready"]
            for n, asset_id in enumerate(expected):
                patch(hosts[n % 2], asset_id, {"title": f"first {n}"})
                patch(hosts[(n + 1) % 2], asset_id, {"title": f"second {n}", "tags": ["x"]})
                expected[asset_id] += ["asset.updated", "asset.updated"]
                if n % 3 == 0:
                    r = hosts[n % 2].request("DELETE", "/s3/delete", f"workspaceId=1&assetId={asset_id}")
                    assert r.status == 200, r.body
                    expected[asset_id].append("asset.deleted")
            for receiver in (shared, only_b):
                wait_until("every event", lambda: by_asset(receiver.delivered()) == expected, seconds=90)
                items = receiver.events()
                assert all(item["verified"] for item in items)
                copies = {}
                for item in items:
                    copies.setdefault(item["id"], []).append(item["body"])
                assert all(len(set(bodies)) == 1 for bodies in copies.values()), "a duplicate with another body"
                duplicates = {k: len(v) for k, v in copies.items() if len(v) > 1}
                assert not duplicates, f"delivered more than once with no crash: {duplicates}"
                for asset_id in expected:
                    ids = [int(i["id"][4:]) for i in receiver.delivered() if i["event"]["data"]["assetId"] == asset_id]
                    assert ids == sorted(ids), f"asset {asset_id}'s events out of order: {ids}"
                    titles = [i["event"]["data"]["title"] for i in receiver.delivered()
                              if i["event"]["data"]["assetId"] == asset_id and i["event"]["type"] == "asset.updated"]
                    assert titles[0].startswith("first ") and titles[1].startswith("second ")
            # The shared endpoint's work was shared (SKIP LOCKED claims on both hosts).
            # (Each host counts a delivery once its answer is in: just after the receiver saw it.)
            wait_until("every delivery counted", lambda: sum(deliveries_by_host(host) for host in hosts) == len(copies_of(shared)), seconds=10)
            by_host = [deliveries_by_host(host) for host in hosts]
            assert all(by_host), by_host
            wait_until("only B delivers to only_b", lambda: deliveries_by_host(hosts[0], "webhook-2") == len(copies_of(only_b)), seconds=10)
            assert deliveries_by_host(hosts[1], "webhook-2") == 0
        finally:
            for host in hosts[1:]:
                host.kill()
            hosts[0].close()
            shared.close()
            only_b.close()


def copies_of(receiver):
    return {item["id"] for item in receiver.events()}
