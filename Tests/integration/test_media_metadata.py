"""Media metadata (issue 19): taken by the sandboxed decoder in the thumbnail's pass,
checked by assetd, recorded for the version it was read from, and shown as the asset
JSON's `media` object (CONTRACT.md). Files are made here with Pillow, ffmpeg and vips."""
import io
import json
import shutil
import sqlite3
import subprocess
import time

import pytest
from PIL import Image

from private_assetd import form, private, wait_until  # noqa: F401 (private: a fixture)
from test_thumbnails import direct_upload, gradient, jpeg_bytes, settled, thumbnail_image

MEDIA_KEYS = {"width", "height", "durationSeconds", "pages", "takenAt", "cameraMake", "cameraModel", "gps"}


def camera_jpeg(orientation=6, gps=True):
    """A 1600x1000 JPEG shown portrait (orientation 6), with camera, capture time and GPS."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D Mark IV"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    if gps:
        info = exif.get_ifd(0x8825)
        info[1], info[2] = "N", (52.0, 31.0, 12.0)
        info[3], info[4] = "W", (1.0, 30.0, 0.0)
    return jpeg_bytes(gradient(1600, 1000), exif=exif.tobytes())


def media_of(client, data, name):
    asset = settled(client, direct_upload(client, data, name)["id"])
    assert asset["thumbnail"]["status"] == "ready", asset
    assert set(asset["media"]) == MEDIA_KEYS, asset["media"]
    return asset


def test_a_portrait_jpeg_with_orientation_6_records_its_shown_size_camera_and_time_but_no_gps(alice):
    asset = media_of(alice, camera_jpeg(), "portrait.jpg")
    assert asset["media"] == {"width": 1000, "height": 1600, "durationSeconds": None, "pages": None,
                              "takenAt": "2024-05-06T07:08:09", "cameraMake": "Canon", "cameraModel": "EOS 5D Mark IV",
                              "gps": None}, asset["media"]
    # The thumbnail carries no EXIF at all (so no GPS), whatever the source had.
    image, response = thumbnail_image(asset)
    assert image.size == (320, 512)
    assert not image.getexif(), dict(image.getexif())
    assert b"Exif" not in response.content and b"Canon" not in response.content
    # The list shows the same object.
    listed = {a["id"]: a for a in alice.get("/api/assets", workspaceId=1, limit=200).json()["assets"]}
    assert listed[asset["id"]]["media"] == asset["media"]


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_an_mp4_records_its_duration_and_frame_size(alice, tmp_path):
    path = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2.5:size=320x240:rate=10",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    media = media_of(alice, path.read_bytes(), "clip.mp4")["media"]
    assert (media["width"], media["height"]) == (320, 240), media
    assert media["durationSeconds"] == pytest.approx(2.5, abs=0.15), media
    assert media["pages"] is None and media["takenAt"] is None and media["gps"] is None


def test_a_three_page_pdf_records_its_page_count(alice):
    pages = [Image.new("RGB", (612, 792), colour) for colour in ("white", "red", "blue")]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    media = media_of(alice, out.getvalue(), "three.pdf")["media"]
    assert media["pages"] == 3, media
    assert (media["width"], media["height"]) == (612, 792), media
    assert media["durationSeconds"] is None


def test_a_heic_records_its_size(alice, tmp_path):
    source, heic = tmp_path / "in.png", tmp_path / "out.heic"
    gradient(640, 480).save(source)
    made = subprocess.run(["vips", "heifsave", str(source), str(heic), "--compression", "hevc"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"libvips cannot write HEIC here (no HEVC encoder in libheif): {made.stderr.strip()[:200]}")
    media = media_of(alice, heic.read_bytes(), "photo.heic")["media"]
    assert (media["width"], media["height"]) == (640, 480), media


def test_gps_is_recorded_only_with_keep_gps_on(private):
    private.start(ASSETD_KEEP_GPS="on")
    body, content_type = form(camera_jpeg(), "gps.jpg")
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r.status == 200, r.json()
    asset_id = r.json()["asset"]["id"]

    def ready():
        asset = private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json()["asset"]
        return asset if asset["thumbnail"]["status"] == "ready" else None
    media = wait_until("the thumbnail", ready, 60)["media"]
    assert media["gps"]["latitude"] == pytest.approx(52 + 31 / 60 + 12 / 3600, abs=1e-6), media
    assert media["gps"]["longitude"] == pytest.approx(-1.5, abs=1e-6), media
    assert media["cameraMake"] == "Canon"


MEDIA_COLUMNS = ("media_etag", "media_width", "media_height", "media_duration_s", "media_pages", "media_taken_at",
                 "media_camera_make", "media_camera_model", "media_gps_latitude", "media_gps_longitude")


def forget_media(private, *asset_ids):
    """As a record made before "v8: media metadata": no media for its version."""
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=10) as db:
        db.executemany(f"UPDATE asset SET {', '.join(c + ' = NULL' for c in MEDIA_COLUMNS)} WHERE id = ?",
                       [(int(i),) for i in asset_ids])


def events_of(private, asset_id):
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=10) as db:
        return [(kind, json.loads(payload)) for kind, payload in
                db.execute("SELECT type, payload FROM event WHERE asset_id = ? ORDER BY id", (int(asset_id),))]


def upload(private, data, name):
    body, content_type = form(data, name)
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r.status == 200, r.json()
    asset_id = r.json()["asset"]["id"]
    wait_until("the thumbnail", lambda: private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1")
               .json()["asset"]["thumbnail"]["status"] == "ready", 60)
    return asset_id


def backfill(private, *arguments):
    return subprocess.run([private.env["ASSETD_BIN"],
                           "backfill-media", *arguments], env=private.env, capture_output=True, text=True, timeout=120)


def test_the_reconciler_fills_in_an_older_asset_without_touching_its_thumbnail(private):
    private.start(ASSETD_RECONCILE_INTERVAL=1)
    asset_id = upload(private, camera_jpeg(gps=False), "old.jpg")

    def asset():
        return private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json()["asset"]
    assert asset()["media"]["width"] == 1000
    key = f"1/thumbnails/{asset_id}.jpg"
    stored = private.s3.head_object(Bucket=private.bucket, Key=key)
    before = events_of(private, asset_id)
    forget_media(private, asset_id)
    # The thumbnail stays ready at every look until the media is back (the reconciler,
    # a pass a second), and its JPEG is not stored again.
    deadline = time.time() + 30
    while True:
        current = asset()
        assert current["thumbnail"]["status"] == "ready", current
        if current["media"]["width"] == 1000:
            break
        assert time.time() < deadline, "the reconciler did not fill the media in within 30 s"
        time.sleep(0.05)
    assert current["media"]["cameraMake"] == "Canon" and current["media"]["height"] == 1600, current["media"]
    after = private.s3.head_object(Bucket=private.bucket, Key=key)
    assert (after["ETag"], after["LastModified"]) == (stored["ETag"], stored["LastModified"]), "the thumbnail was stored again"
    new = events_of(private, asset_id)[len(before):]
    assert [kind for kind, _ in new] == ["asset.updated"], new
    data = new[0][1]["data"]
    assert data["media"]["width"] == 1000 and data["media"]["cameraMake"] == "Canon", data
    assert data["thumbnail"]["status"] == "ready"
    # The media is committed inside the batch; its line is logged when the batch ends,
    # which a busy host can put after the look above.
    wait_until("the media backfill's batch line", lambda: "media backfill batch done" in private.log(), seconds=10)
    assert "thumbnail.ready" not in [kind for kind, _ in new]


def test_backfill_media_reads_older_assets_on_demand_and_a_corrupt_one_keeps_its_thumbnail(private):
    private.start(ASSETD_MEDIA_BACKFILL_BATCH=0)
    good = upload(private, camera_jpeg(gps=False), "good.jpg")
    bad = upload(private, camera_jpeg(gps=False), "bad.jpg")
    private.stop()
    forget_media(private, good, bad)
    # The bad one's object goes corrupt: a JPEG's first bytes, then noise, same length.
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=10) as db:
        key, size = db.execute("SELECT key, size FROM asset WHERE id = ?", (int(bad),)).fetchone()
    noise = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes((i * 37 + 11) % 251 for i in range(size - 4))
    private.s3.put_object(Bucket=private.bucket, Key=key, Body=noise)

    bad_input = backfill(private, "--limit", "0")
    assert bad_input.returncode == 64 and "--limit must be from 1" in bad_input.stderr, bad_input
    assert "Only this workspace" in backfill(private, "--help").stdout

    dry = backfill(private, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would read asset {good} " in dry.stdout and f"would read asset {bad} " in dry.stdout, dry.stdout
    assert "2 assets would be read" in dry.stdout, dry.stdout
    other = backfill(private, "--workspace", "2")
    assert other.returncode == 0 and "0 examined" in other.stdout, other.stdout

    done = backfill(private)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "media backfill: 2 examined, 1 recorded, 1 unreadable" in done.stdout, done.stdout
    assert "assets/s" in done.stdout
    again = backfill(private)
    assert again.returncode == 0 and "0 examined" in again.stdout, "an unreadable file is not tried again: " + again.stdout

    private.start(ASSETD_MEDIA_BACKFILL_BATCH=0)
    good_asset = private.request("GET", f"/api/assets/{good}", "workspaceId=1").json()["asset"]
    bad_asset = private.request("GET", f"/api/assets/{bad}", "workspaceId=1").json()["asset"]
    assert good_asset["media"]["width"] == 1000 and good_asset["media"]["cameraMake"] == "Canon", good_asset["media"]
    assert bad_asset["thumbnail"]["status"] == "ready", bad_asset
    assert all(value is None for value in bad_asset["media"].values()), bad_asset["media"]
    for asset_id in (good, bad):
        kinds = [kind for kind, _ in events_of(private, asset_id)]
        assert kinds.count("thumbnail.ready") == 1 and "thumbnail.failed" not in kinds, kinds
        # The unreadable one is recorded as unknown without an event: nothing to index.
        assert (kinds[-1] == "asset.updated") == (asset_id == good), kinds


def test_backfill_media_gives_up_on_an_asset_the_decoder_fails_on_every_time_and_retry_failed_reads_it_again(private, tmp_path):
    private.start(ASSETD_MEDIA_BACKFILL_BATCH=0)
    asset_id = upload(private, camera_jpeg(gps=False), "crashes.jpg")
    private.stop()
    forget_media(private, asset_id)
    # A decoder that dies at once: every read of the asset is a decoder failure (a crash,
    # not the file's refusal), counted in the database across runs.
    broken = tmp_path / "broken-decoder"
    broken.write_text("#!/bin/sh\nexit 70\n")
    broken.chmod(0o755)
    # Its connections wait in the listening socket's backlog until the task's deadline.
    crashing = dict(private.env, ASSETD_THUMBNAILER=str(broken), ASSETD_THUMBNAIL_TIMEOUT="1")

    def run(*arguments, env=None):
        done = subprocess.run([private.env["ASSETD_BIN"], "backfill-media", *arguments], env=env or private.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    assert "--retry-failed" in run("--help").stdout
    for _ in range(3):
        done = run(env=crashing)
        assert "1 examined, 0 recorded, 0 unreadable (recorded as unknown), 1 left for later" in done.stdout, done.stdout
    assert "(1 given up after 3 decoder failures)" in done.stdout, done.stdout
    assert f"asset={asset_id}" in done.stderr and "gave up on the asset after 3 decoder failures" in done.stderr, done.stderr
    assert "1 asset given up on" in done.stdout and "--retry-failed reads them again" in done.stdout, done.stdout
    # Given up on: not read again, by the command or (after a restart) the reconciler.
    later = run(env=crashing)
    assert "0 examined" in later.stdout and "1 asset given up on" in later.stdout, later.stdout
    dry = run("--retry-failed", "--dry-run")
    assert "1 asset given up on would be read again (dry run: nothing cleared)" in dry.stdout, dry.stdout

    retried = run("--retry-failed")
    assert "cleared the decoder failures counted on 1 asset (1 given up on)" in retried.stdout, retried.stdout
    assert "1 examined, 1 recorded" in retried.stdout, retried.stdout
    private.start(ASSETD_MEDIA_BACKFILL_BATCH=0)
    media = private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json()["asset"]["media"]
    assert media["width"] == 1000 and media["cameraMake"] == "Canon", media
