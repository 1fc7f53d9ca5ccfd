// Module-level tests of web/assetd-upload.js under node (node --test): batching, the retry
// schedule, 403/429/offline handling, progress arithmetic, cancel, pause and resume.
// assetd and S3 are fakes here; the browser tests (Tests/integration/test_browser.py) run
// the same module against the real stack in Chromium.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
    DEFAULTS, ProgressTracker, UploadError, UploadPaused, formatPartNumbers, partRange, partSizeFor, retryDelay, upload,
} from "../../web/assetd-upload.js";

const MiB = 1024 * 1024;
const BASE = "https://assetd.test";

/** A fake assetd + S3. `part(n, attempt)` decides a PUT's answer: {status, headers, hang}. */
// S3's answers are cross-origin: the page sees only the headers the bucket's CORS rules
// expose (`expose`; assetd setup-bucket: ETag). As in Chromium, getResponseHeader() of any
// other header returns null and is an error in the console (recorded in `unsafe`), and
// getAllResponseHeaders() lists only the readable ones.
// `signMD5`: like assetd (ASSETD_PART_CHECKSUM=optional), a URL asked for with a
// contentMD5 signs content-md5 (X-Amz-SignedHeaders); false is an assetd that signs none.
function fakeService({ partSize = 1000, part = () => ({ status: 200 }), expiresIn = 3600, existing = [], expose = ["ETag"], signMD5 = true } = {}) {
    const readable = new Set(expose.map((h) => h.toLowerCase()));
    const s = {
        calls: [], puts: [], batches: [], md5Lists: [], inFlight: 0, maxInFlight: 0, aborted: false, completed: null, unsafe: [],
        stored: new Map(existing.map((n) => [n, partSize])), attempts: new Map(), xhrs: new Set(),
    };
    s.fetch = async (url, init) => {
        const u = new URL(url);
        s.calls.push(`${init.method} ${u.pathname}`);
        assert.match(init.headers.Authorization, /^Bearer tok-\d+$/);
        const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
        switch (u.pathname) {
            case "/s3/start-upload":
                if (u.searchParams.get("fileType") === "text/html") return json(415, { error: "fileType text/html is not allowed." });
                return json(200, { uploadId: "up-1", assetId: "7", key: "1/digital_assets/7.jpg", partSize });
            case "/s3/get-upload-urls": {
                const spec = u.searchParams.get("partNumbers");
                s.batches.push(spec);
                const numbers = spec.split(",").flatMap((p) => {
                    const [a, b] = p.split("-").map(Number);
                    return Array.from({ length: (b || a) - a + 1 }, (_, i) => a + i);
                });
                assert.ok(numbers.length <= 100);
                const md5s = u.searchParams.get("contentMD5");
                s.md5Lists.push(md5s);
                const list = md5s ? md5s.split(",") : [];
                if (md5s) assert.equal(list.length, numbers.length);
                const signed = (i) => (md5s && signMD5 ? `&X-Amz-SignedHeaders=content-md5%3Bhost&md5=${encodeURIComponent(list[i])}` : "&X-Amz-SignedHeaders=host");
                return json(200, { urls: numbers.map((n, i) => ({ partNumber: n, url: `https://s3.test/b/k?partNumber=${n}&batch=${s.batches.length}${signed(i)}` })), expiresIn });
            }
            case "/s3/list-parts":
                return json(200, { parts: [...s.stored].map(([n, size]) => ({ PartNumber: n, ETag: `"e${n}"`, Size: size })) });
            case "/s3/complete-upload":
                s.completed = JSON.parse(init.body);
                return json(200, { success: true, key: "1/digital_assets/7.jpg", location: "x", etag: "y" });
            case "/s3/abort-upload":
                s.aborted = JSON.parse(init.body);
                return json(200, { success: true });
            default:
                return json(404, { error: `No route for ${u.pathname}.` });
        }
    };
    s.xhrFactory = () => {
        const x = {
            upload: { onprogress: null }, status: 0, responseText: "", headers: {},
            open(method, url) { x.method = method; x.url = url; },
            requestHeaders: {},
            setRequestHeader(name, value) { x.requestHeaders[name] = value; },
            getResponseHeader(name) {
                const key = Object.keys(x.headers).find((h) => h.toLowerCase() === name.toLowerCase());
                if (!readable.has(name.toLowerCase())) {
                    s.unsafe.push(`Refused to get unsafe header "${name}"`);
                    return null;
                }
                return key === undefined ? null : x.headers[key];
            },
            getAllResponseHeaders() {
                return Object.entries(x.headers).filter(([h]) => readable.has(h.toLowerCase())).map(([h, v]) => `${h.toLowerCase()}: ${v}\r\n`).join("");
            },
            abort() { if (x.timer) clearTimeout(x.timer); x.done = true; s.inFlight--; s.xhrs.delete(x); x.onabort?.(); },
            send(body) {
                const n = Number(new URL(x.url).searchParams.get("partNumber"));
                const attempt = (s.attempts.get(n) || 0) + 1;
                s.attempts.set(n, attempt);
                s.puts.push({ n, attempt, size: body.size, url: x.url, md5: x.requestHeaders["Content-MD5"], body });
                s.inFlight++;
                s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
                s.xhrs.add(x);
                const answer = part(n, attempt, x.url);
                if (answer.hang) return;
                // Two progress events, then the answer.
                x.timer = setTimeout(() => {
                    x.upload.onprogress?.({ loaded: Math.floor(body.size / 2), total: body.size });
                    x.timer = setTimeout(() => {
                        if (x.done) return;
                        x.done = true;
                        s.inFlight--;
                        s.xhrs.delete(x);
                        if (answer.status === 0) return x.onerror?.();
                        x.upload.onprogress?.({ loaded: body.size, total: body.size });
                        x.status = answer.status;
                        x.responseText = answer.body || "";
                        // What S3 sends; the page reads only what `expose` lets through.
                        x.headers = answer.status === 200 ? { ETag: `"e${n}"`, "x-amz-request-id": "r1", ...answer.headers } : answer.headers || {};
                        if (answer.status === 200) s.stored.set(n, body.size);
                        x.onload?.();
                    }, 2);
                }, 2);
            },
        };
        return x;
    };
    return s;
}

let tokens = 0;
function options(service, extra = {}) {
    return {
        baseUrl: BASE, workspaceId: 1, getToken: async () => `tok-${++tokens}`, fetch: service.fetch,
        xhrFactory: service.xhrFactory, storage: memoryStorage(), directThreshold: 100, retryDelays: [0, 5, 15, 25],
        ...extra,
    };
}

function memoryStorage() {
    const m = new Map();
    return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), map: m };
}

function file(size, name = "a.jpg") {
    return new File([new Uint8Array(size)], name, { type: "image/jpeg", lastModified: 1700000000000 });
}

test("part arithmetic: sizes, ranges, 10,000 parts at most", () => {
    assert.equal(partSizeFor(1), 5 * MiB);
    assert.equal(partSizeFor(5 * MiB * 10000), 5 * MiB);
    assert.equal(partSizeFor(5 * MiB * 10000 + 1), 6 * MiB);
    const size = 5 * 1024 ** 4; // 5 TiB
    assert.ok(Math.ceil(size / partSizeFor(size)) <= 10000);
    assert.deepEqual(partRange(1, 10, 25), [0, 10]);
    assert.deepEqual(partRange(3, 10, 25), [20, 25]);
});

test("partNumbers are sent as ranges", () => {
    assert.equal(formatPartNumbers([1, 2, 3, 4]), "1-4");
    assert.equal(formatPartNumbers([5, 1, 2, 9, 3, 10]), "1-3,5,9-10");
    assert.equal(formatPartNumbers([7]), "7");
});

test("the retry schedule is 0, 1, 3, 5 s with at most 25 % jitter", () => {
    assert.deepEqual([0, 1, 2, 3].map((a) => retryDelay(a, DEFAULTS.retryDelays, () => 0)), [0, 1000, 3000, 5000]);
    assert.deepEqual([0, 1, 2, 3].map((a) => retryDelay(a, DEFAULTS.retryDelays, () => 0.999)), [0, 1250, 3749, 6249]);
});

test("progress only grows, counts a retried part once and ends at exactly the total", () => {
    const events = [];
    const p = new ProgressTracker(25, (e) => events.push(e.loaded));
    p.update(1, 6, 10);
    p.update(2, 4, 10);
    p.update(1, 3, 10); // a retry of part 1 starts again from 0: no step back
    p.update(1, 12, 10); // more than the part: capped
    p.update(3, 5, 5);
    p.update(2, 10, 10);
    p.finish();
    p.finish();
    assert.deepEqual(events, [6, 10, 14, 19, 25]);
});

test("multipart: batches of presigned URLs, `concurrency` parts in flight, complete in order", async () => {
    const s = fakeService({ partSize: 1000 });
    const events = [];
    // Without checksums (with them, the first batch is smaller: see "checksums: ..." below).
    const result = await upload(file(45500), options(s, { concurrency: 3, batchSize: 20, checksums: false, onProgress: (e) => events.push(e) }));
    assert.deepEqual(result, { assetId: "7", key: "1/digital_assets/7.jpg" });
    assert.equal(s.puts.length, 46);
    assert.equal(s.maxInFlight, 3);
    assert.ok(s.batches.length >= 3 && s.batches.length <= 4, s.batches.join(" | "));
    assert.equal(s.batches[0], "1-20");
    for (const b of s.batches) assert.ok(!/(^|,)\d+-\d+/.test(b) || b.split(",").length <= 20);
    assert.deepEqual(s.completed.parts.map((p) => p.PartNumber), Array.from({ length: 46 }, (_, i) => i + 1));
    assert.equal(s.completed.parts[0].ETag, '"e1"');
    assert.equal(s.puts.at(-1).size, 500); // the last part is the short one
    for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded > events[i - 1].loaded);
    assert.ok(events.every((e) => e.loaded <= e.total && e.total === 45500));
    assert.equal(events.at(-1).loaded, 45500);
});

test("a part failing with 500 (or the network) is retried on the schedule and succeeds", async () => {
    const s = fakeService({ part: (n, attempt) => (n === 2 && attempt <= 3 ? { status: attempt === 2 ? 0 : 500 } : { status: 200 }) });
    const retries = [];
    await upload(file(3000), options(s, { onRetry: (e) => retries.push(e) }));
    assert.deepEqual(retries.map((r) => [r.partNumber, r.attempt, r.status]), [[2, 1, 500], [2, 2, 0], [2, 3, 500]]);
    assert.equal(s.attempts.get(2), 4);
    assert.ok(s.completed);
});

test("a part failing five times fails the upload with the status, and keeps it for a retry", async () => {
    const s = fakeService({ part: (n) => (n === 1 ? { status: 503, body: "<Error><Message>Slow down</Message></Error>" } : { status: 200 }) });
    const o = options(s);
    await assert.rejects(upload(file(3000), o), (e) => e instanceof UploadError && e.status === 503 && /Slow down/.test(e.message) && e.partNumber === 1);
    assert.equal(s.attempts.get(1), 5);
    assert.equal(s.aborted, false);
    assert.equal(o.storage.map.size, 1);
});

test("other 4xx answers fail at once", async () => {
    const s = fakeService({ part: (n) => (n === 2 ? { status: 400, body: "<Error><Message>Bad digest</Message></Error>" } : { status: 200 }) });
    await assert.rejects(upload(file(3000), options(s)), (e) => e.status === 400 && /Bad digest/.test(e.message));
    assert.equal(s.attempts.get(2), 1);
});

test("a 403 gets a freshly presigned URL and lowers the concurrency", async () => {
    const s = fakeService({ part: (n, attempt) => (n === 1 && attempt === 1 ? { status: 403 } : { status: 200 }) });
    await upload(file(12000), options(s, { concurrency: 4, batchSize: 100 }));
    const retry = s.puts.find((p) => p.n === 1 && p.attempt === 2);
    assert.match(retry.url, /batch=2/);
    assert.ok(s.batches.length === 2 && s.batches[1].startsWith("1"), s.batches.join(" | "));
    assert.ok(s.completed);
});

test("a 429 pauses the whole queue for Retry-After", async () => {
    const started = [];
    const s = fakeService({
        part: (n, attempt) => {
            started.push([n, Date.now()]);
            return n === 1 && attempt === 1 ? { status: 429, headers: { "Retry-After": "0.2" } } : { status: 200 };
        },
        expose: ["ETag", "Retry-After"], // a proxy in front of S3 that exposes it
    });
    const t0 = Date.now();
    await upload(file(6000), options(s, { concurrency: 1 }));
    // Part 1 answered 429 after ~4 ms; nothing started for the next 200 ms.
    const after = started.slice(1).map(([, t]) => t - t0);
    assert.ok(after[0] >= 190, `next PUT after ${after[0]} ms`);
    assert.ok(s.completed);
});

test("reads no response header that CORS keeps from the page (no 'Refused to get unsafe header')", async () => {
    // S3 answers with Retry-After (and more) that its CORS rules do not expose: part 2
    // once with 503 SlowDown, part 3 once with 429. Nothing unreadable is asked for, and
    // the unreadable Retry-After counts as absent (throttleDelay, the retry schedule).
    const s = fakeService({
        part: (n, attempt) => {
            if (n === 2 && attempt === 1) return { status: 503, headers: { "Retry-After": "30", "x-amz-request-id": "r2" } };
            if (n === 3 && attempt === 1) return { status: 429, headers: { "Retry-After": "30" } };
            return { status: 200, headers: { "Retry-After": "30" } };
        },
    });
    const t0 = Date.now();
    await upload(file(4500), options(s, { throttleDelay: 50 }));
    assert.deepEqual(s.unsafe, []);
    assert.ok(s.completed);
    assert.equal(s.completed.parts.length, 5);
    assert.ok(Date.now() - t0 < 5000, "a Retry-After the page cannot read was obeyed");
});

test("offline: the queue waits for the online event", async () => {
    const online = new EventTarget();
    const s = fakeService();
    globalThis.navigator ??= {};
    const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    Object.defineProperty(globalThis, "navigator", { value: { onLine: false }, configurable: true });
    try {
        const done = upload(file(3000), options(s, { onlineTarget: online }));
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(s.puts.length, 0);
        Object.defineProperty(globalThis, "navigator", { value: { onLine: true }, configurable: true });
        online.dispatchEvent(new Event("online"));
        await done;
        assert.equal(s.puts.length, 3);
    } finally {
        if (saved) Object.defineProperty(globalThis, "navigator", saved);
    }
});

test("URLs are presigned again before they expire (a laptop that slept)", async () => {
    let clock = 1_000_000;
    const s = fakeService({
        expiresIn: 3600,
        part: (n) => {
            if (n === 2) clock += 3600 * 1000; // an hour passes while part 2 is sent
            return { status: 200 };
        },
    });
    await upload(file(4000), options(s, { concurrency: 1, checksums: false, now: () => clock }));
    assert.equal(s.batches.length, 2, s.batches.join(" | "));
    assert.equal(s.batches[1], "3-4");
    assert.ok(s.puts.filter((p) => p.n >= 3).every((p) => /batch=2/.test(p.url)));
});

test("cancel: requests stop, abort-upload is called, AbortError", async () => {
    const s = fakeService({ part: (n) => (n >= 2 ? { hang: true } : { status: 200 }) });
    const controller = new AbortController();
    const o = options(s, { signal: controller.signal });
    const done = upload(file(4000), o);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    await assert.rejects(done, (e) => e.name === "AbortError" && !e.paused);
    assert.deepEqual(s.aborted, { uploadId: "up-1", assetId: "7", workspaceId: 1 });
    assert.equal(s.xhrs.size, 0);
    assert.equal(o.storage.map.size, 0);
    assert.equal(s.completed, null);
});

test("pause, then resume: list-parts, and only the missing parts are sent", async () => {
    let hang = true;
    const s = fakeService({ part: (n) => (hang && n >= 3 ? { hang: true } : { status: 200 }) });
    const storage = memoryStorage();
    const controller = new AbortController();
    const first = upload(file(4500), options(s, { storage, signal: controller.signal, concurrency: 5 }));
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new UploadPaused());
    await assert.rejects(first, (e) => e.name === "AbortError" && e.paused === true);
    assert.equal(s.aborted, false);
    assert.equal(storage.map.size, 1);
    assert.deepEqual([...s.stored.keys()].sort(), [1, 2]);

    hang = false;
    s.puts.length = 0;
    s.calls.length = 0;
    const result = await upload(file(4500), options(s, { storage }));
    assert.equal(result.assetId, "7");
    assert.ok(s.calls.includes("GET /s3/list-parts"));
    assert.ok(!s.calls.includes("GET /s3/start-upload"));
    assert.deepEqual(s.puts.map((p) => p.n).sort(), [3, 4, 5]);
    assert.deepEqual(s.completed.parts.map((p) => p.PartNumber), [1, 2, 3, 4, 5]);
    assert.equal(storage.map.size, 0);
});

test("a resume record whose upload is gone starts a new upload", async () => {
    const s = fakeService();
    const storage = memoryStorage();
    const o = options(s, { storage });
    const { resumeKey } = await import("../../web/assetd-upload.js");
    storage.setItem(resumeKey(file(3000), BASE, 1), JSON.stringify({ uploadId: "gone", assetId: "3", key: "k", partSize: 1000 }));
    const realFetch = s.fetch;
    s.fetch = async (url, init) => (url.includes("list-parts") ? new Response('{"error":"The upload no longer exists."}', { status: 409 }) : realFetch(url, init));
    o.fetch = s.fetch;
    await upload(file(3000), o);
    assert.ok(s.calls.includes("GET /s3/start-upload"));
    assert.equal(s.puts.length, 3);
});

test("errors carry assetd's message and status", async () => {
    const s = fakeService();
    await assert.rejects(upload(new File([new Uint8Array(500)], "x.html", { type: "text/html" }), options(s)),
        (e) => e instanceof UploadError && e.status === 415 && e.message === "fileType text/html is not allowed.");
});

test("direct upload: one POST, progress scaled to the file, ends at the total", async () => {
    const events = [];
    let sent;
    const xhrFactory = () => {
        const x = {
            upload: { onprogress: null }, status: 0, responseText: "",
            open(m, u) { x.m = m; x.u = u; }, setRequestHeader(n, v) { x.auth = v; }, getAllResponseHeaders: () => "", abort() {},
            send(body) {
                sent = { m: x.m, u: x.u, body, auth: x.auth };
                setTimeout(() => {
                    x.upload.onprogress({ loaded: 100, total: 400 });
                    x.upload.onprogress({ loaded: 400, total: 400 });
                    x.status = 200;
                    x.responseText = JSON.stringify({ asset: { id: "9", key: "1/digital_assets/9.png", status: "ready" } });
                    x.onload();
                }, 1);
            },
        };
        return x;
    };
    const s = fakeService();
    const result = await upload(file(80, "p.png"), options(s, { xhrFactory, onProgress: (e) => events.push(e.loaded) }));
    assert.equal(result.assetId, "9");
    assert.equal(sent.m, "POST");
    assert.equal(sent.u, `${BASE}/api/assets/upload?workspaceId=1`);
    assert.match(sent.auth, /^Bearer /);
    assert.equal(sent.body.get("file").size, 80);
    assert.deepEqual(events, [20, 80]);
});

test("a getToken that throws fails the upload at once with its own error", async () => {
    const s = fakeService();
    const problem = new Error("signed out");
    await assert.rejects(upload(file(3000), options(s, { getToken: () => { throw problem; } })), (e) => e === problem);
    assert.deepEqual(s.calls, []);
});

test("abandon: a paused upload is aborted and forgotten", async () => {
    const { abandon } = await import("../../web/assetd-upload.js");
    const s = fakeService({ part: (n) => (n >= 2 ? { hang: true } : { status: 200 }) });
    const storage = memoryStorage();
    const controller = new AbortController();
    const first = upload(file(3000), options(s, { storage, signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 30));
    controller.abort(new UploadPaused());
    await assert.rejects(first, (e) => e.paused === true);
    assert.equal(await abandon(file(3000), options(s, { storage })), true);
    assert.deepEqual(s.aborted, { uploadId: "up-1", assetId: "7", workspaceId: 1 });
    assert.equal(storage.map.size, 0);
    assert.equal(await abandon(file(3000), options(s, { storage })), false);
});

// --- Per-part checksums (issue 20) --------------------------------------------------------

import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { MD5, base64, md5OfBlob, signsContentMD5 } from "../../web/assetd-upload.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const md5Base64 = (bytes) => createHash("md5").update(bytes).digest("base64");

function randomFile(size, name = "r.jpg") {
    const bytes = randomBytes(size);
    return { bytes, file: new File([bytes], name, { type: "image/jpeg", lastModified: 1700000000000 }) };
}

test("MD5: RFC 1321's test suite (appendix A.5)", () => {
    const suite = {
        "": "d41d8cd98f00b204e9800998ecf8427e",
        a: "0cc175b9c0f1b6a831c399e269772661",
        abc: "900150983cd24fb0d6963f7d28e17f72",
        "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
        abcdefghijklmnopqrstuvwxyz: "c3fcd3d76192e4007dfb496cca67e13b",
        ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789: "d174ab98d277d9f5a5611c2c9f419d9f",
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890": "57edf4a22be3c955ac49da2e2107b67a",
    };
    for (const [text, digest] of Object.entries(suite)) assert.equal(hex(new MD5().update(new TextEncoder().encode(text)).digest()), digest, text);
});

test("MD5: equal to Python's hashlib on random data, fed in random pieces, at every padding edge", () => {
    const sizes = [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65537, 3 * MiB + 17];
    const blobs = sizes.map((n) => randomBytes(n));
    const python = execFileSync("python3", ["-c", "import hashlib,sys,json; print(json.dumps([hashlib.md5(bytes.fromhex(l)).hexdigest() for l in sys.stdin.read().split()]))"],
        { input: blobs.map((b) => b.toString("hex")).join("\n"), maxBuffer: 64 * MiB });
    const expected = JSON.parse(python);
    blobs.forEach((bytes, i) => {
        const md5 = new MD5();
        for (let at = 0; at < bytes.length; ) {
            const step = 1 + Math.floor(Math.random() * 300);
            md5.update(bytes.subarray(at, at + step));
            at += step;
        }
        assert.equal(hex(md5.digest()), expected[i], `${bytes.length} bytes`);
    });
});

test("MD5 of a Blob is the base64 Content-MD5 of its bytes", async () => {
    const { bytes, file: f } = randomFile(9 * MiB + 3); // more than one 8 MiB read
    assert.equal(await md5OfBlob(f), md5Base64(bytes));
    assert.equal(base64(new Uint8Array([0xd4, 0x1d])), "1B0=");
    assert.equal(signsContentMD5("https://s3.test/k?X-Amz-SignedHeaders=content-md5%3Bhost&X-Amz-Signature=x"), true);
    assert.equal(signsContentMD5("https://s3.test/k?X-Amz-SignedHeaders=host"), false);
});

test("checksums: batches carry each part's MD5 in part order, and every PUT its Content-MD5", async () => {
    const s = fakeService({ partSize: 1000 });
    const { bytes, file: f } = randomFile(45500);
    await upload(f, options(s, { concurrency: 3, batchSize: 20 }));
    // A batch holds the part a PUT waits for and the parts after it whose MD5 is ready
    // (how many depends on the hasher's pace), at most batchSize, each part once.
    const md5Of = (n) => md5Base64(bytes.subarray((n - 1) * 1000, Math.min(45500, n * 1000)));
    const asked = [];
    s.batches.forEach((spec, i) => {
        const numbers = spec.split(",").flatMap((p) => {
            const [a, b] = p.split("-").map(Number);
            return Array.from({ length: (b || a) - a + 1 }, (_, k) => a + k);
        });
        assert.ok(numbers.length >= 1 && numbers.length <= 20, spec);
        assert.deepEqual(s.md5Lists[i].split(","), numbers.map(md5Of), `batch ${spec}`);
        asked.push(...numbers);
    });
    assert.equal(s.batches[0].split(/[-,]/)[0], "1");
    assert.deepEqual(asked.sort((a, b) => a - b), Array.from({ length: 46 }, (_, i) => i + 1));
    assert.ok(s.batches.length < 46, s.batches.join(" | ")); // the hasher runs ahead: not one call a part
    assert.equal(s.puts.length, 46);
    for (const put of s.puts) assert.equal(put.md5, md5Of(put.n), `part ${put.n}`);
    assert.equal(s.completed.parts.length, 46);
});

test("checksums: an assetd that signs no MD5 gets no Content-MD5 header, and hashing stops", async () => {
    const s = fakeService({ partSize: 1000, signMD5: false });
    let hashed = 0;
    const hashPart = async (blob) => {
        hashed++;
        return md5OfBlob(blob);
    };
    await upload(randomFile(45500).file, options(s, { concurrency: 2, batchSize: 20, hashPart }));
    assert.ok(s.puts.every((p) => p.md5 === undefined));
    assert.equal(s.md5Lists.filter(Boolean).length, 1); // only the first batch asked with MD5s
    assert.ok(hashed <= 2 + 22, `hashed ${hashed} parts`); // the first batch and the prefetch, never all 46
    assert.ok(s.completed);
});

test("checksums: off by option, nothing is hashed or sent", async () => {
    const s = fakeService({ partSize: 1000 });
    await upload(randomFile(3000).file, options(s, { checksums: false, hashPart: () => assert.fail("hashed") }));
    assert.ok(s.md5Lists.every((m) => m === null) && s.puts.every((p) => p.md5 === undefined));
});

const badDigest = { status: 400, body: "<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message></Error>" };

test("checksums: a BadDigest is retried once from the file, with the same signed URL", async () => {
    const s = fakeService({ part: (n, attempt) => (n === 2 && attempt === 1 ? badDigest : { status: 200 }) });
    const retries = [];
    let hashedPart2 = 0;
    const hashPart = async (blob) => {
        const md5 = await md5OfBlob(blob);
        if (md5 === md5Base64(part2)) hashedPart2++;
        return md5;
    };
    const { bytes, file: f } = randomFile(3000);
    const part2 = bytes.subarray(1000, 2000);
    await upload(f, options(s, { onRetry: (e) => retries.push(e), hashPart }));
    assert.deepEqual(retries.map((r) => [r.partNumber, r.attempt, r.status, r.code]), [[2, 1, 400, "BadDigest"]]);
    assert.equal(hashedPart2, 2); // read from the file and hashed again
    const puts = s.puts.filter((p) => p.n === 2);
    assert.equal(puts.length, 2);
    assert.equal(puts[1].url, puts[0].url); // the same MD5, so the same URL
    assert.equal(puts[1].md5, md5Base64(part2));
    assert.ok(s.completed);
});

test("checksums: a part whose bytes changed gets a URL for its new MD5 after a BadDigest", async () => {
    const s = fakeService({ part: (n, attempt) => (n === 1 && attempt === 1 ? badDigest : { status: 200 }) });
    let calls = 0;
    // The first MD5 of part 1 differs from the second: the file changed under the upload.
    const hashPart = async (blob) => {
        const md5 = await md5OfBlob(blob);
        return blob.size === 1000 && calls++ === 0 ? "AAAAAAAAAAAAAAAAAAAAAA==" : md5;
    };
    await upload(randomFile(2000).file, options(s, { concurrency: 1, hashPart }));
    const puts = s.puts.filter((p) => p.n === 1);
    assert.equal(puts[0].md5, "AAAAAAAAAAAAAAAAAAAAAA==");
    assert.notEqual(puts[1].url, puts[0].url);
    assert.equal(new URL(puts[1].url).searchParams.get("md5"), puts[1].md5);
    assert.ok(s.completed);
});

test("checksums: a second BadDigest fails the upload with a clear error, and keeps it for a retry", async () => {
    const s = fakeService({ part: (n) => (n === 2 ? badDigest : { status: 200 }) });
    const o = options(s);
    await assert.rejects(upload(randomFile(3000).file, o), (e) =>
        e instanceof UploadError && e.status === 400 && e.partNumber === 2 && e.code === "BadDigest" &&
        /^Part 2 reached S3 corrupted twice \(BadDigest/.test(e.message));
    assert.equal(s.attempts.get(2), 2);
    assert.equal(s.completed, null);
    assert.equal(s.aborted, false);
    assert.equal(o.storage.map.size, 1);
});
