"""Thumbnails (issue 9): made on assetd's Dispatch queue with libvips after every upload,
stored at {ws}/thumbnails/{id}.jpg, and shown in the asset record. Images are made here
with Pillow, the video with ffmpeg; every check looks at the stored JPEG itself."""
import concurrent.futures
import io
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import zlib
import struct

import pytest
import requests
from PIL import Image

from conftest import CERTIFICATE, start_upload, upload_whole
from private_assetd import PrivateAssetd, form, wait_until

SIZE = 512


def jpeg_bytes(image, **options):
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def gradient(width, height, colour=(200, 80, 40)):
    """A picture with a left-to-right gradient and a bright top band, so that rotations show."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    top = Image.new("RGB", (width, max(1, height // 8)), colour)
    image.paste(top, (0, 0))
    return image


def direct_upload(client, data, filename, workspace=1):
    r = requests.post(client.base + "/api/assets/upload", params={"workspaceId": workspace},
                      files={"file": (filename, data, "application/octet-stream")},
                      headers=client.headers(), timeout=120, verify=CERTIFICATE)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.json()["asset"]


def settled(client, asset_id, seconds=60, workspace=1):
    """The asset record once its thumbnail is no longer pending."""
    def done():
        r = client.get(f"/api/assets/{asset_id}", workspaceId=workspace)
        assert r.status_code == 200, r.text
        asset = r.json()["asset"]
        return asset if asset["thumbnail"]["status"] != "pending" else None
    return wait_until(f"asset {asset_id}'s thumbnail", done, seconds)


def thumbnail_image(asset):
    """The thumbnail, fetched with the record's presigned URL, as a Pillow image."""
    assert asset["thumbnail"]["status"] == "ready", asset
    r = requests.get(asset["thumbnail"]["url"], timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert r.content[:3] == b"\xff\xd8\xff"
    image = Image.open(io.BytesIO(r.content))
    image.load()
    return image, r


def keep(name, image_or_bytes):
    """Saves what a test saw under ASSETD_THUMBNAIL_SAMPLES (for a person to look at)."""
    folder = os.environ.get("ASSETD_THUMBNAIL_SAMPLES")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if isinstance(image_or_bytes, bytes):
        open(path, "wb").write(image_or_bytes)
    else:
        image_or_bytes.save(path)


def test_exif_orientation_6_comes_out_portrait_at_512_with_its_headers(alice, s3, bucket):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape; shown rotated 90 degrees clockwise
    data = jpeg_bytes(gradient(1600, 1000), exif=exif.tobytes())
    asset = settled(alice, direct_upload(alice, data, "rotated.jpg")["id"])
    image, response = thumbnail_image(asset)
    keep("orientation6.jpg", response.content)
    assert image.size == (320, 512), image.size
    # Rotated clockwise: the bright band that was on top is now on the right.
    right, left = image.getpixel((image.width - 5, image.height // 2)), image.getpixel((5, image.height // 2))
    assert right[0] > 150 and right[1] < 130, (right, left)
    assert image.getexif().get(0x0112) in (None, 1), "metadata should be stripped"

    key = f"1/thumbnails/{asset['id']}.jpg"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "max-age=31536000"
    if os.environ.get("ASSETD_TEST_S3_STRICT") == "1":
        # moto drops headers with an underscore (see test_multipart); Ceph keeps them.
        metadata = {k.replace("-", "_"): v for k, v in head["Metadata"].items()}
        assert metadata == {"workspace_id": "1", "asset_id": asset["id"]}
    assert asset["status"] == "ready"


def test_a_direct_upload_answers_its_queued_thumbnail_as_pending(alice):
    # The answer used to say "none" while the task was already queued.
    asset = direct_upload(alice, jpeg_bytes(gradient(300, 200)), "queued.jpg")
    assert asset["thumbnail"] == {"status": "pending", "url": None}, asset
    assert settled(alice, asset["id"])["thumbnail"]["status"] == "ready"


def test_a_cmyk_jpeg_comes_out_as_rgb(alice):
    data = jpeg_bytes(gradient(900, 600, colour=(0, 0, 255)).convert("CMYK"))
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image, response = thumbnail_image(settled(alice, direct_upload(alice, data, "cmyk.jpg")["id"]))
    keep("cmyk.jpg", response.content)
    assert image.mode == "RGB"
    assert image.size == (512, 341)
    band = image.getpixel((image.width // 2, 5))
    # Still blue (libvips' fallback CMYK profile makes Pillow's naive C+M a press navy), not inverted.
    assert band[2] > band[0] + 60 and band[2] > band[1] + 60, band
    bottom = image.getpixel((image.width // 2, image.height - 3))
    assert min(bottom) > 200, bottom


def test_an_image_with_a_wide_gamut_profile_is_converted_to_srgb(alice, tmp_path):
    # The decoder colour-manages only images that carry a profile (or are CMYK): the
    # same red in Display P3 pixels, tagged with its P3 profile, must come out as the
    # sRGB red again, not as its raw P3 numbers (which strip would leave untagged).
    srgb_red = (200, 30, 30)
    Image.new("RGB", (800, 600), srgb_red).save(tmp_path / "red.png")
    subprocess.run(["vips", "icc_transform", str(tmp_path / "red.png"), str(tmp_path / "red-p3.jpg[Q=95]"), "p3"], check=True)
    data = (tmp_path / "red-p3.jpg").read_bytes()
    raw = Image.open(io.BytesIO(data))
    assert raw.info.get("icc_profile"), "the source should carry its P3 profile"
    p3_pixel = raw.getpixel((400, 300))
    assert abs(p3_pixel[0] - srgb_red[0]) > 8 or abs(p3_pixel[1] - srgb_red[1]) > 8, p3_pixel
    image, response = thumbnail_image(settled(alice, direct_upload(alice, data, "red-p3.jpg")["id"]))
    keep("red-p3.jpg", response.content)
    assert not image.info.get("icc_profile"), "thumbnails carry no metadata"
    pixel = image.getpixel((image.width // 2, image.height // 2))
    assert all(abs(a - b) <= 6 for a, b in zip(pixel, srgb_red)), (pixel, p3_pixel)

    # And an untagged image keeps its numbers (sRGB by assumption, no transform).
    plain = jpeg_bytes(Image.new("RGB", (800, 600), (184, 50, 41)))
    image, _ = thumbnail_image(settled(alice, direct_upload(alice, plain, "plain-red.jpg")["id"]))
    pixel = image.getpixel((image.width // 2, image.height // 2))
    assert all(abs(a - b) <= 6 for a, b in zip(pixel, (184, 50, 41))), pixel


@pytest.mark.s3_wiring
def test_a_multipart_upload_gets_its_thumbnail_too(alice):
    data = jpeg_bytes(gradient(2000, 1500))
    started, _ = upload_whole(alice, data)
    image, _ = thumbnail_image(settled(alice, started["assetId"]))
    assert image.size == (512, 384)


def test_pdf_page_one_gets_a_thumbnail(alice):
    out = io.BytesIO()
    red, blue = Image.new("RGB", (600, 800), (220, 20, 20)), Image.new("RGB", (600, 800), (20, 20, 220))
    red.save(out, "PDF", save_all=True, append_images=[blue], resolution=72)
    asset = direct_upload(alice, out.getvalue(), "two-pages.pdf")
    assert asset["fileType"] == "application/pdf"
    image, response = thumbnail_image(settled(alice, asset["id"]))
    keep("pdf.jpg", response.content)
    assert max(image.size) == SIZE and image.height > image.width
    r, g, b = image.getpixel((image.width // 2, image.height // 2))
    assert r > 150 and b < 100, (r, g, b)  # page 1 (red), not page 2


def make_video(path, seconds):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=duration={seconds}:size=640x360:rate=10", "-pix_fmt", "yuv420p", "-y", path],
                   check=True, timeout=60)
    return open(path, "rb").read()


@pytest.mark.parametrize("seconds", [2, 0.3])
def test_an_mp4_gets_a_frame_as_its_thumbnail(alice, seconds):
    with tempfile.TemporaryDirectory() as folder:
        data = make_video(os.path.join(folder, "clip.mp4"), seconds)
    asset = direct_upload(alice, data, "clip.mp4")
    assert asset["fileType"] == "video/mp4"
    image, response = thumbnail_image(settled(alice, asset["id"]))
    keep(f"video-{seconds}.jpg", response.content)
    assert image.size == (512, 288)


def test_a_corrupt_jpeg_fails_its_thumbnail_and_the_asset_stays_ready(alice, s3, bucket):
    good = jpeg_bytes(gradient(800, 600))
    corrupt = good[:700] + bytes((i * 37) % 251 for i in range(len(good) - 700))
    asset = settled(alice, direct_upload(alice, corrupt, "corrupt.jpg")["id"])
    assert asset["status"] == "ready"
    assert asset["thumbnail"] == {"status": "failed", "url": None}
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"1/thumbnails/{asset['id']}.jpg")


def test_a_type_without_a_thumbnail_gets_none(alice):
    # A WebM declared and stored as such but made of nothing decodable would fail; a type
    # assetd stores with no thumbnail at all needs ASSETD_ALLOWED_TYPES: covered by the
    # database state below in the private tests. Here: thumbnails are never pending forever.
    asset = settled(alice, direct_upload(alice, jpeg_bytes(gradient(64, 64)), "small.jpg")["id"])
    image, _ = thumbnail_image(asset)
    assert image.size == (64, 64), "a small image is not enlarged"


def png_bomb(side=30000):
    """A PNG of side x side black pixels: gigabytes decoded, a few MB stored."""
    row = b"\x00" * (side * 3 + 1)
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(side)]
    idat = b"".join(chunks) + compressor.flush()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_png_bomb_fails_fast_and_assetd_stays_healthy(alice, base_url):
    bomb = png_bomb()
    assert len(bomb) < 10 * 1024 * 1024
    started = time.monotonic()
    asset = settled(alice, direct_upload(alice, bomb, "bomb.png")["id"], seconds=30)
    elapsed = time.monotonic() - started
    assert asset["status"] == "ready" and asset["thumbnail"]["status"] == "failed"
    assert elapsed < 10, f"the bomb took {elapsed:.1f} s"
    assert requests.get(base_url + "/healthz", timeout=5, verify=CERTIFICATE).json() == {"ok": True}
    # And the next thumbnail is made as usual.
    image, _ = thumbnail_image(settled(alice, direct_upload(alice, jpeg_bytes(gradient(700, 700)), "after.jpg")["id"]))
    assert image.size == (512, 512)


def test_the_list_shows_thumbnails(alice):
    asset = settled(alice, direct_upload(alice, jpeg_bytes(gradient(300, 200)), "listed.jpg")["id"])
    r = alice.get("/api/assets", workspaceId=1, limit=200)
    assert r.status_code == 200
    listed = {a["id"]: a for a in r.json()["assets"]}
    assert listed[asset["id"]]["thumbnail"]["status"] == "ready"
    assert requests.get(listed[asset["id"]]["thumbnail"]["url"], timeout=30).status_code == 200


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def test_a_burst_of_50_uploads_all_end_ready_while_presign_keeps_answering(alice):
    pending = start_upload(alice, fileSize=6 * 1024 * 1024, fileName="p.jpg")
    presign = dict(workspaceId=1, assetId=pending["assetId"], UploadId=pending["uploadId"], PartNumber=1)

    def presign_times(count, stop=None):
        times = []
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            started = time.monotonic()
            r = alice.get("/s3/get-upload-url", **presign)
            times.append(time.monotonic() - started)
            assert r.status_code == 200, r.text
        return times

    presign_times(20)  # warm up the connection
    idle = presign_times(200)
    pictures = [jpeg_bytes(gradient(1800 + i * 10, 1200, colour=(i * 5, 100, 200))) for i in range(50)]
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max_workers=9) as pool:
        busy = pool.submit(presign_times, 100_000, stop)
        from conftest import Client
        clients = [Client(alice.base, alice.token) for _ in range(8)]
        uploads = [pool.submit(direct_upload, clients[i % 8], data, f"burst-{i}.jpg") for i, data in enumerate(pictures)]
        ids = [u.result()["id"] for u in uploads]
        records = [settled(alice, asset_id, seconds=180) for asset_id in ids]
        stop.set()
        during = busy.result()
    assert [r["thumbnail"]["status"] for r in records] == ["ready"] * 50
    idle_p99, busy_p99 = percentile(idle, 0.99), percentile(during, 0.99)
    print(f"presign p99: idle {idle_p99 * 1000:.1f} ms, during the burst {busy_p99 * 1000:.1f} ms ({len(during)} calls)")
    # A floor of 10 ms on the idle figure: below it, one scheduler tick is more than 3x.
    assert busy_p99 <= 3 * max(idle_p99, 0.010), (idle_p99, busy_p99)


# --- a private assetd: crashes, a stop, and content swapped behind assetd's back -------

@pytest.fixture
def private():
    with tempfile.TemporaryDirectory() as workdir:
        instance = PrivateAssetd(workdir, ASSETD_THREADS=4, ASSETD_THUMBNAIL_CONCURRENCY=1)
        try:
            yield instance
        finally:
            instance.close()


def thumbnail_row(private, asset_id):
    with sqlite3.connect(private.env["ASSETD_DATABASE"], timeout=5) as db:
        return db.execute("SELECT status, thumbnail_status, thumbnail_reason, thumbnail_attempts FROM asset WHERE id = ?",
                          (asset_id,)).fetchone()


def scratch_files(private):
    folder = os.path.join(private.workdir, "thumbnail-tmp")
    return [name for name in os.listdir(folder) if name.startswith(("thumbnail-source-", "frame-"))] if os.path.isdir(folder) else []


def crash_mid_task(private, data, filename):
    """Uploads with the crash point armed; returns once assetd killed itself mid-task."""
    body, content_type = form(data, filename)
    private.start(ASSETD_FAULT="thumbnail-after-download")
    private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert private.process.wait(timeout=20) == -9, "assetd did not die at the crash point"
    assert thumbnail_row(private, 1)[:2] == ("ready", "pending")


def test_kill_9_during_a_task_then_a_restart_completes_it(private):
    crash_mid_task(private, jpeg_bytes(gradient(1200, 800)), "photo.jpg")
    assert scratch_files(private), "the crash should have left its source behind"
    private.start()
    wait_until("the thumbnail after the restart", lambda: thumbnail_row(private, 1)[1] == "ready", 30)
    assert thumbnail_row(private, 1) == ("ready", "ready", None, 2)
    assert private.keys() == ["1/digital_assets/1.jpg", "1/thumbnails/1.jpg"]
    assert scratch_files(private) == [], "the start-up sweep and the task remove their temporary files"
    assert "thumbnail tasks resumed" in private.log()


@pytest.mark.parametrize("name,content", [
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>'),
    ("miff", b"id=ImageMagick  version=1.0\nclass=DirectClass  colors=0  matte=False\ncolumns=2  rows=2  depth=8\n\x0c\n:\x1a" + b"\xc8" * 12),
])
def test_content_swapped_for_an_untrusted_format_never_reaches_its_loader(private, name, content):
    # The upload is a JPEG; while the task is interrupted, the object becomes an SVG or a
    # MIFF (as a compromised or careless writer to the bucket could do).
    crash_mid_task(private, jpeg_bytes(gradient(200, 200)), "photo.jpg")
    private.s3.put_object(Bucket=private.bucket, Key="1/digital_assets/1.jpg", Body=content, ContentType="image/jpeg")
    private.start()
    wait_until("the thumbnail to fail", lambda: thumbnail_row(private, 1)[1] == "failed", 30)
    status, _, reason, _ = thumbnail_row(private, 1)
    assert status == "ready"
    assert "gets no thumbnail" in reason or "would be read by" in reason, reason
    assert "1/thumbnails/1.jpg" not in private.keys()
    assert "svgload" not in private.log().replace(reason, "") and "magickload" not in private.log().replace(reason, "")


@pytest.mark.parametrize("name,content", [
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>'),
    ("miff", b"id=ImageMagick  version=1.0\nclass=DirectClass  columns=2  rows=2  depth=8\n\x0c\n:\x1a" + b"\xc8" * 12),
])
def test_an_untrusted_format_declared_image_jpeg_in_a_multipart_upload_gets_no_thumbnail(alice, s3, bucket, name, content):
    started = start_upload(alice, file_type="image/jpeg", fileSize=len(content), fileName=f"{name}.jpg")
    r = alice.get("/s3/get-upload-url", workspaceId=1, assetId=started["assetId"], UploadId=started["uploadId"], PartNumber=1)
    etag = requests.put(r.json()["url"], data=content, timeout=30).headers["ETag"]
    r = alice.post("/s3/complete-upload", {"uploadId": started["uploadId"], "assetId": started["assetId"], "workspaceId": 1,
                                           "parts": [{"ETag": etag, "PartNumber": 1}]})
    # Refused by its content at complete-upload, or else accepted as declared: then its
    # thumbnail task checks the content (libmagic, then the loader libvips would use) and
    # fails it with a reason, before any loader reads it.
    assert r.status_code in (200, 415), r.text
    if r.status_code == 200:
        asset = settled(alice, started["assetId"])
        assert asset["status"] == "ready"
        assert asset["thumbnail"] == {"status": "failed", "url": None}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"1/thumbnails/{started['assetId']}.jpg")
    assert "Contents" not in listed


def test_sigterm_leaves_waiting_tasks_pending_and_the_next_start_finishes_them(private):
    private.start()
    bodies = [form(jpeg_bytes(gradient(3000, 2000, colour=(i * 30, 0, 0))), f"p{i}.jpg") for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda b: private.request("POST", "/api/assets/upload", "workspaceId=1", *b), bodies))
    assert [a.status for a in answers] == [200] * 6
    started = time.monotonic()
    private.stop()
    assert time.monotonic() - started < 12, "the stop waited past the drain time"
    assert private.process.returncode == 0
    assert "thumbnail queue stopped" in private.log()
    states = [thumbnail_row(private, i)[1] for i in range(1, 7)]
    # Whatever the stop caught waiting is still pending (the queue's own unit test pins
    # that it starts none after a stop); nothing is lost or failed.
    assert set(states) <= {"pending", "ready"}, states
    print(f"left pending by SIGTERM: {states.count('pending')} of 6")
    private.start()
    wait_until("every thumbnail", lambda: all(thumbnail_row(private, i)[1] == "ready" for i in range(1, 7)), 60)


def test_thumbnails_off_records_none(private):
    private.start(ASSETD_THUMBNAILS="off")
    body, content_type = form(jpeg_bytes(gradient(300, 300)), "photo.jpg")
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r.status == 200
    assert r.json()["asset"]["thumbnail"] == {"status": "none", "url": None}
    assert thumbnail_row(private, 1) == ("ready", "none", "thumbnails are off (ASSETD_THUMBNAILS)", 0)


@pytest.mark.parametrize("fmt,name", [("GIF", "anim.gif"), ("WEBP", "pic.webp"), ("TIFF", "pic.tiff"), ("PNG", "alpha.png")])
def test_gif_webp_tiff_and_transparent_png_get_thumbnails(alice, fmt, name):
    image = gradient(1024, 768)
    out = io.BytesIO()
    if fmt == "GIF":  # two frames: the thumbnail is the first (red band), not the second
        second = Image.new("RGB", (1024, 768), (0, 0, 255))
        image.save(out, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    elif fmt == "PNG":  # transparent: flattened on white
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.new("L", rgba.size, 0))
        rgba.save(out, "PNG")
    else:
        image.save(out, fmt)
    thumb, response = thumbnail_image(settled(alice, direct_upload(alice, out.getvalue(), name)["id"]))
    keep(f"format-{name}.jpg", response.content)
    assert thumb.size == (512, 384) and thumb.mode == "RGB"
    top, middle = thumb.getpixel((256, 10)), thumb.getpixel((256, 200))
    if fmt == "PNG":
        assert min(middle) > 240, middle
    else:
        assert top[0] > 150 and top[2] < 120, top


@pytest.mark.skipif(shutil.which("vips") is None, reason="vips (libvips-tools) makes the HEIC; scripts/test installs it")
def test_heic_gets_a_thumbnail(alice, tmp_path):
    """HEIC, which Pillow cannot write: libvips' own heifsave makes it from a gradient."""
    source, heic = tmp_path / "g.png", tmp_path / "g.heic"
    gradient(1024, 768).save(source, "PNG")
    subprocess.run(["vips", "copy", str(source), str(heic)], check=True, timeout=60)
    data = heic.read_bytes()
    asset = direct_upload(alice, data, "photo.heic")
    assert asset["fileType"] == "image/heic" and asset["key"].endswith(".heic")
    thumb, response = thumbnail_image(settled(alice, asset["id"]))
    keep("format-heic.jpg", response.content)
    assert thumb.size == (512, 384) and thumb.mode == "RGB"
    top = thumb.getpixel((256, 10))
    assert top[0] > 150 and top[2] < 120, top


def tiff_with_an_unknown_tag():
    """A TIFF that makes libtiff, through libvips, warn ("Unknown field with tag 65000"),
    once for every time the file is opened."""
    from PIL import TiffImagePlugin
    directory = TiffImagePlugin.ImageFileDirectory_v2()
    directory[65000] = "assetd"
    directory.tagtype[65000] = 2  # ASCII
    out = io.BytesIO()
    gradient(300, 200).save(out, "TIFF", tiffinfo=directory)
    return out.getvalue()


def test_libvips_warnings_reach_the_log_as_one_line_each(private):
    """libvips' warnings go through assetd's logger (a warning line, once however often
    libvips repeats it), never as raw "VIPS-WARNING **" lines on standard error."""
    private.start()
    body, content_type = form(tiff_with_an_unknown_tag(), "scan.tif")
    r = private.request("POST", "/api/assets/upload", "workspaceId=1", body, content_type)
    assert r is not None and r.status == 200, r and r.body[:300]
    wait_until("the TIFF's thumbnail", lambda: thumbnail_row(private, 1)[1] == "ready", 30)
    log = private.log()
    assert "VIPS-WARNING" not in log, log[-3000:]
    lines = [l for l in log.splitlines() if "Unknown field with tag 65000" in l]
    assert len(lines) == 1, lines
    assert " warning " in lines[0] and "libvips:" in lines[0] and "domain=VIPS" in lines[0], lines[0]
    print(lines[0])
