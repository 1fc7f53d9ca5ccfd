"""Presign latency beside a load, for the bench scripts (bench/thumbnail.sh,
bench/media-backfill.sh): GET /s3/get-upload-url for part 1 of an upload it starts, on
one keep-alive connection, timed call by call; 20 calls to warm up, 200 idle, then as
many as fit while the load runs (a thread of its own until stop()).

    probe = PresignProbe(base, cert, headers)   # starts the upload, warms up, times idle
    probe.start(); ...the load...; probe.stop()
    print(probe.report("the burst"), file=sys.stderr)
"""
import threading
import time

import requests


def pct(values, fraction):
    """The value at `fraction` of the sorted values, in milliseconds."""
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))] * 1000


class PresignProbe:
    def __init__(self, base, cert, headers, workspace=1):
        self.base, self.cert, self.headers = base, cert, headers
        upload = requests.get(base + "/s3/start-upload", params={"workspaceId": workspace, "fileType": "image/jpeg",
                                                                 "fileName": "p.jpg"},
                              headers=headers, verify=cert, timeout=30).json()
        self.params = {"workspaceId": workspace, "assetId": upload["assetId"], "UploadId": upload["uploadId"], "PartNumber": 1}
        self.session = requests.Session()
        self.times(20)
        self.idle = self.times(200)
        self.during = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: self.during.extend(self.times(10**6, self._stop)))

    def times(self, count, stop=None):
        times = []
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            t0 = time.perf_counter()
            r = self.session.get(self.base + "/s3/get-upload-url", params=self.params, headers=self.headers, verify=self.cert,
                                 timeout=30)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        return times

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def report(self, load):
        return (f"  presign: idle p50 {pct(self.idle, 0.5):.1f} ms, p99 {pct(self.idle, 0.99):.1f} ms; during {load} "
                f"p50 {pct(self.during, 0.5):.1f} ms, p99 {pct(self.during, 0.99):.1f} ms ({len(self.during)} calls)")
