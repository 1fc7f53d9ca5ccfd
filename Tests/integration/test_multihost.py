"""Several assetd hosts on one PostgreSQL (issue 18): two real assetd processes, each with
its own socket and state, sharing one database (a schema of its own per test on the
PostgreSQL that scripts/test starts) and one bucket. The test sends each request to one
instance or the other, as nginx's upstream would, and kills, races and stops them.

Runs when ASSETD_TEST_POSTGRES_URL names the server (scripts/test's PostgreSQL pass)."""
import concurrent.futures
import io
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
from PIL import Image

from private_assetd import POSTGRES_URL, PrivateAssetd, form, fresh_schema_url, wait_until

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL: set ASSETD_TEST_POSTGRES_URL (scripts/test's PostgreSQL pass does)")

# Short leases and passes, so that a test sees a takeover in seconds rather than minutes.
FLEET_SETTINGS = dict(ASSETD_THREADS=6, ASSETD_THUMBNAIL_LEASE=5, ASSETD_RECONCILE_INTERVAL=3, ASSETD_RECONCILE_GRACE=3)


class Fleet:
    def __init__(self, count=2, **settings):
        self.dirs = [tempfile.TemporaryDirectory() for _ in range(count)]
        database = fresh_schema_url("mh_")
        merged = dict(FLEET_SETTINGS, **settings)
        self.hosts = [PrivateAssetd(d.name, ASSETD_DATABASE=database, **merged) for d in self.dirs]
        # One bucket for the fleet: the first host's.
        for host in self.hosts[1:]:
            host.s3.delete_bucket(Bucket=host.bucket)
            host.bucket = self.hosts[0].bucket
            host.env["AWS_BUCKET"] = host.bucket
        self.next = 0
        self.lock = threading.Lock()

    def start(self):
        for host in self.hosts:
            host.start()
        return self

    def pick(self):
        """Round robin over the live hosts, as nginx's upstream does."""
        with self.lock:
            live = [h for h in self.hosts if h.process and h.process.poll() is None]
            self.next += 1
            return live[self.next % len(live)]

    def request(self, *args, **kwargs):
        return self.pick().request(*args, **kwargs)

    def logs(self):
        return "".join(host.log() for host in self.hosts)

    def keys(self):
        return self.hosts[0].keys()

    def close(self):
        for host in self.hosts[1:]:
            host.kill()
        self.hosts[0].close()
        for d in self.dirs:
            d.cleanup()


@pytest.fixture
def fleet():
    instance = Fleet()
    try:
        yield instance
    finally:
        instance.close()


def jpeg(seed):
    out = io.BytesIO()
    Image.new("RGB", (320 + seed, 240), (seed * 37 % 256, 120, 200 - seed % 200)).save(out, "JPEG", quality=90)
    return out.getvalue()


def asset(fleet, asset_id):
    r = fleet.request("GET", f"/api/assets/{asset_id}", "workspaceId=1")
    return r.json()["asset"] if r is not None and r.status == 200 else None


def direct_upload(fleet, data, asset_id=None, host=None):
    body, content_type = form(data, "photo.jpg")
    query = "workspaceId=1" + (f"&assetId={asset_id}" if asset_id else "")
    return (host or fleet.pick()).request("POST", "/api/assets/upload", query, body, content_type)


@needs_postgres
def test_kill_9_of_one_host_during_a_burst_of_30_uploads(fleet):
    """Every upload answered 200 ends ready with its thumbnail (the dead host's tasks are
    taken over once their lease expires); nothing stays pending after the reconciler's
    pass; no object in the bucket belongs to no ready asset."""
    fleet.start()
    victim = fleet.hosts[1]
    answered = {}

    def one(i):
        try:
            return i, direct_upload(fleet, jpeg(i))
        except OSError:  # the dead host's socket refused it, as nginx would see and retry elsewhere
            return i, None

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(one, i) for i in range(30)]
        time.sleep(0.4)
        victim.process.send_signal(signal.SIGKILL)
        for future in futures:
            i, r = future.result(timeout=120)
            if r is not None and r.status == 200:
                answered[i] = r.json()["asset"]["id"]
    assert victim.process.wait(timeout=10) == -9
    assert len(answered) >= 15, f"only {len(answered)} of 30 uploads were answered 200"

    survivor = fleet.hosts[0]

    def all_ready():
        records = [asset(fleet, asset_id) for asset_id in answered.values()]
        return all(r and r["status"] == "ready" and r["thumbnail"]["status"] == "ready" for r in records)

    wait_until("every answered upload ready with its thumbnail", all_ready, 60)

    # The reconciler (every 3 s, grace 3 s) settles what the dead host left mid-way.
    def settled():
        listed = survivor.request("GET", "/api/assets", "workspaceId=1&limit=200").json()["assets"]
        return all(a["status"] != "pending" for a in listed) and listed

    listed = wait_until("nothing left pending", settled, 60)
    ready = {a["id"]: a for a in listed if a["status"] == "ready"}
    for asset_id in answered.values():
        assert str(asset_id) in ready, f"asset {asset_id} was answered 200 but is not ready"

    def no_orphans():
        expected = set()
        for a in ready.values():
            expected.add(a["key"])
            expected.add(f"1/thumbnails/{a['id']}.jpg")
        return set(fleet.keys()) <= expected
    wait_until("no object without its ready record", no_orphans, 30)
    assert "reconciler pass on this host" in survivor.log()


@needs_postgres
def test_two_hosts_racing_version_switches_and_deletes(fleet):
    """New versions of one asset sent to both hosts at once: one wins, the others get 409
    with Retry-After; then deletes racing more versions: the asset ends deleted and no key
    of it is left."""
    fleet.start()
    first = direct_upload(fleet, jpeg(1))
    assert first.status == 200, first.body
    asset_id = first.json()["asset"]["id"]
    barrier = threading.Barrier(6)

    def version(i):
        barrier.wait(timeout=10)
        return direct_upload(fleet, jpeg(10 + i), asset_id=asset_id, host=fleet.hosts[i % 2])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(version, range(6)))
    statuses = sorted(r.status for r in answers)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses
    for r in answers:
        if r.status == 409:
            assert r.headers["content-type"].startswith("application/json") and r.json()["error"], r.body
    record = asset(fleet, asset_id)
    assert record["versions"][-1]["version"] == statuses.count(200) + 1

    barrier = threading.Barrier(6)

    def delete_or_version(i):
        barrier.wait(timeout=10)
        host = fleet.hosts[i % 2]
        if i < 3:
            return "delete", host.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={asset_id}")
        return "version", direct_upload(fleet, jpeg(40 + i), asset_id=asset_id, host=host)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(delete_or_version, range(6)))
    for kind, r in answers:
        if kind == "delete":
            assert r.status in (200, 409), r.body
        else:
            assert r.status in (200, 404, 409), r.body
    # A delete answered 409 (another host held the asset) is retried, as Retry-After says.
    wait_until("the delete", lambda: fleet.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={asset_id}").status == 200, 20)
    assert fleet.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").status == 404

    def gone():
        return [k for k in fleet.keys() if re.match(rf"1/(digital_assets|thumbnails)/{asset_id}\.|1/versions/{asset_id}/", k)] == []
    wait_until("every key of the deleted asset gone (the sweep included)", gone, 40)


@needs_postgres
def test_an_upload_ended_on_one_host_is_refused_by_the_others_part_urls(fleet):
    """The pending-upload cache across hosts (LISTEN/NOTIFY): host b holds the upload in
    memory after its part URLs; host a aborts it; b refuses the next part URL (409) within
    2 s. Then every assetd listener on the server is terminated: b reconnects, LISTENs
    again, and the same holds for a second upload."""
    fleet.start()
    a, b = fleet.hosts

    def cached_then_aborted():
        started = a.request("GET", "/s3/start-upload", "workspaceId=1&fileType=image/jpeg&fileSize=11534336").json()
        ids = f"workspaceId=1&assetId={started['assetId']}&UploadId={started['uploadId']}&PartNumber=1"
        for _ in range(3):
            r = b.request("GET", "/s3/get-upload-url", ids)
            assert r.status == 200, r.body
        body = json.dumps({"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1}).encode()
        r = a.request("POST", "/s3/abort-upload", "", body, "application/json")
        assert r.status == 200 and r.json() == {"success": True}, r.body
        wait_until("host b refuses a part URL of the upload that host a aborted",
                   lambda: b.request("GET", "/s3/get-upload-url", ids).status == 409, 2)
        r = b.request("GET", "/s3/get-upload-url", ids)
        assert r.status == 409 and r.json()["error"], r.body

    cached_then_aborted()
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", POSTGRES_URL, "-c",
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'assetd-listener'"],
                   check=True, capture_output=True)
    time.sleep(1.5)  # the listeners' reconnects (at once, then every second)
    cached_then_aborted()


@needs_postgres
def test_postgres_stopped_and_started_under_load(fleet):
    """While PostgreSQL is stopped the routes that need it answer 503 JSON fast and /readyz
    says so; once it is back, both hosts serve again without a restart."""
    fleet.start()
    pg_ctl = os.environ.get("ASSETD_TEST_POSTGRES_CTL", "")  # a command taking stop or start
    if not pg_ctl:
        pytest.skip("ASSETD_TEST_POSTGRES_CTL (the command that stops and starts the test server) is not set")
    ok = direct_upload(fleet, jpeg(3))
    assert ok.status == 200, ok.body
    asset_id = ok.json()["asset"]["id"]
    subprocess.run(pg_ctl.split() + ["stop"], check=True, capture_output=True, timeout=60)
    try:
        timings = []
        for i in range(12):
            host = fleet.hosts[i % 2]
            started = time.monotonic()
            r = host.request("GET", f"/api/assets/{asset_id}", "workspaceId=1", timeout=30)
            timings.append(time.monotonic() - started)
            assert r is not None and r.status == 503, (r.status, r.body) if r else "no answer"
            assert r.headers["content-type"].startswith("application/json")
            assert "retry-after" in r.headers
        assert max(timings) < 5, timings
        assert sorted(timings)[len(timings) // 2] < 1, timings
        # The probe is cached for a few seconds: the next one says so.
        wait_until("/readyz to report the database", lambda: fleet.hosts[0].request("GET", "/readyz", token=False).status == 503, 15)
        ready = fleet.hosts[0].request("GET", "/readyz", token=False)
        assert ready.json()["database"] is False
    finally:
        subprocess.run(pg_ctl.split() + ["start"], check=True, capture_output=True, timeout=60)
    for host in fleet.hosts:
        wait_until("the host to serve again", lambda: host.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").status == 200, 30)
        assert host.process.poll() is None, "assetd restarted or died"
    again = direct_upload(fleet, jpeg(4))
    assert again.status == 200, again.body


@needs_postgres
def test_a_reconciler_pass_runs_on_exactly_one_host(fleet):
    """Both hosts wake every 3 s; each pass runs on one of them only: the log lines that
    name the host never come two within one interval."""
    fleet.start()
    time.sleep(10)
    passes = []
    for host in fleet.hosts:
        for line in host.log().splitlines():
            if "reconciler pass on this host" in line:
                stamp = line.split(" ", 1)[0]
                passes.append((stamp, re.search(r"host=(\S+)", line).group(1)))
    assert passes, "no reconciler pass at all"
    assert len(passes) <= 10 // 3 + 2, passes
    hosts = {host for _, host in passes}
    assert len(hosts) >= 1
    # Never two passes in the same second on two hosts (the interval is 3 s).
    stamps = sorted(stamp[:19] for stamp, _ in passes)
    assert len(stamps) == len(set(stamps)), passes


def test_two_hosts_on_one_sqlite_file_are_refused():
    """SQLite stays one host's: a second assetd on the same file stops with a clear line."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        database = os.path.join(a, "shared.sqlite")
        first = PrivateAssetd(a, ASSETD_DATABASE=database, ASSETD_THREADS=2)
        second = PrivateAssetd(b, ASSETD_DATABASE=database, ASSETD_THREADS=2)
        try:
            first.start()
            process = subprocess.run([os.environ["ASSETD_BIN"], "serve"], env=second.env, capture_output=True, timeout=30)
            assert process.returncode != 0
            assert b"another assetd already serves the SQLite database" in process.stderr, process.stderr
        finally:
            second.close()
            first.close()


@needs_postgres
def test_migrate_db_moves_a_filled_sqlite_database_to_postgres():
    """assetd migrate-db on a SQLite file that real requests filled (uploads, a new
    version, a delete, a thumbnail): afterwards an assetd on PostgreSQL, on the same
    bucket, answers every asset as the SQLite one did, and new ids follow the old ones."""
    with tempfile.TemporaryDirectory() as workdir:
        lite = PrivateAssetd(workdir, ASSETD_THREADS=4)
        try:
            lite.start()
            ids = []
            for i in range(3):
                r = direct_upload(None, jpeg(60 + i), host=lite)
                assert r.status == 200, r.body
                ids.append(r.json()["asset"]["id"])
            r = direct_upload(None, jpeg(70), asset_id=ids[0], host=lite)
            assert r.status == 200, r.body
            assert lite.request("DELETE", "/s3/delete", f"workspaceId=1&assetId={ids[2]}").status == 200
            wait_until("the thumbnails", lambda: all(
                lite.request("GET", f"/api/assets/{i}", "workspaceId=1").json()["asset"]["thumbnail"]["status"] == "ready"
                for i in ids[:2]), 30)
            before = {i: lite.request("GET", f"/api/assets/{i}", "workspaceId=1") for i in ids}
            refused = subprocess.run([os.environ["ASSETD_BIN"], "migrate-db", "--to", fresh_schema_url("mh_")], env=lite.env,
                                     capture_output=True, timeout=60)
            assert refused.returncode != 0 and b"stop assetd" in refused.stderr, refused.stderr
            lite.stop()

            target = fresh_schema_url("mh_")
            moved = subprocess.run([os.environ["ASSETD_BIN"], "migrate-db", "--to", target], env=lite.env,
                                   capture_output=True, timeout=60)
            assert moved.returncode == 0, moved.stderr
            assert b"asset: 3 rows" in moved.stdout, moved.stdout
            password = re.search(r"://[^:/@]+:([^@]+)@", target)
            if password:
                assert password.group(1).encode() not in moved.stdout + moved.stderr

            with tempfile.TemporaryDirectory() as pgdir:
                pg = PrivateAssetd(pgdir, ASSETD_THREADS=4, ASSETD_DATABASE=target)
                pg.s3.delete_bucket(Bucket=pg.bucket)
                pg.bucket = pg.env["AWS_BUCKET"] = lite.bucket
                try:
                    pg.start()
                    for i, answer in before.items():
                        again = pg.request("GET", f"/api/assets/{i}", "workspaceId=1")
                        assert again.status == answer.status, (i, again.body)
                        if answer.status == 200:
                            old, new = answer.json()["asset"], again.json()["asset"]
                            for field in ("key", "fileType", "size", "etag", "status", "versions", "createdAt", "fileName"):
                                assert old[field] == new[field], (field, old[field], new[field])
                            assert new["thumbnail"]["status"] == "ready"
                    r = direct_upload(None, jpeg(80), host=pg)
                    assert r.status == 200, r.body
                    assert int(r.json()["asset"]["id"]) > max(int(i) for i in ids)
                finally:
                    pg.kill()
        finally:
            lite.close()


@needs_postgres
def test_migrate_db_into_a_database_a_host_already_started_against():
    """L5: a host pointed at the target PostgreSQL early (started, then stopped) left the schema,
    its webhook sink and its bookkeeping there, but no record: migrate-db copies into it (the
    sink named on both sides kept once), and the host then serves the moved asset. A target
    that holds a record is refused, naming what it holds."""
    hook = dict(ASSETD_WEBHOOK_URLS="http://127.0.0.1:9/assetd-hook", ASSETD_WEBHOOK_SECRET="whsec_" + "c2VjcmV0" * 4,
                ASSETD_THUMBNAILS="off", ASSETD_THREADS=4)
    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory() as pgdir:
        lite = PrivateAssetd(workdir, **hook)
        target = fresh_schema_url("mh_")
        pg = PrivateAssetd(pgdir, ASSETD_DATABASE=target, **hook)
        pg.s3.delete_bucket(Bucket=pg.bucket)
        pg.bucket = pg.env["AWS_BUCKET"] = lite.bucket
        try:
            lite.start()
            r = direct_upload(None, jpeg(90), host=lite)
            assert r.status == 200, r.body
            moved_asset = r.json()["asset"]
            lite.stop()
            pg.start()
            assert "records in PostgreSQL" in pg.log()
            pg.stop()

            moved = subprocess.run([os.environ["ASSETD_BIN"], "migrate-db", "--to", target], env=lite.env,
                                   capture_output=True, timeout=60)
            assert moved.returncode == 0, moved.stderr
            assert b"asset: 1 rows" in moved.stdout and b"event_sink: 1 rows" in moved.stdout, moved.stdout
            pg.start()
            again = pg.request("GET", f"/api/assets/{moved_asset['id']}", "workspaceId=1")
            assert again.status == 200 and again.json()["asset"]["key"] == moved_asset["key"], again.body
            pg.stop()

            refused = subprocess.run([os.environ["ASSETD_BIN"], "migrate-db", "--to", target], env=lite.env,
                                     capture_output=True, timeout=60)
            assert refused.returncode != 0
            assert b"already holds records (asset: 1 rows" in refused.stderr, refused.stderr
        finally:
            pg.kill()
            lite.close()
