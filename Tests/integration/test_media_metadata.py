"""Media metadata (issue 19): taken by the sandboxed decoder in the thumbnail's pass,
checked by assetd, recorded for the version it was read from, and shown as the asset
JSON's `media` object (CONTRACT.md). Files are made here with Pillow, ffmpeg and vips."""
import io
import shutil
import sqlite3
import subprocess

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


def test_assets_from_before_v8_are_filled_in_at_the_next_start_without_a_reupload(private):
    private.start()
    body, content_type = form(camera_jpeg(gps=False), "old.jpg")
    asset_id = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type).json()["asset"]["id"]

    def asset():
        return private.request("GET", f"/api/assets/{asset_id}", "workspaceId=1").json()["asset"]
    wait_until("the thumbnail", lambda: asset()["thumbnail"]["status"] == "ready", 60)
    assert asset()["media"]["width"] == 1000
    private.stop()
    # As a record made before "v8: media metadata": no media for its version.
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=5) as db:
        db.execute("UPDATE asset SET media_etag = NULL, media_width = NULL, media_height = NULL, media_camera_make = NULL")
    private.start()
    filled = wait_until("the backfill", lambda: asset()["media"]["width"] == 1000 and asset()["thumbnail"]["status"] == "ready", 60)
    assert filled
    final = asset()
    assert final["media"]["cameraMake"] == "Canon" and final["media"]["height"] == 1600, final["media"]
    assert "media metadata backfill queued" in private.log()
