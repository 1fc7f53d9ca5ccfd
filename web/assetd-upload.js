// assetd-upload.js: the browser client of assetd. One dependency-free ES module, no
// build step. Types: assetd-upload.d.ts beside it. Behaviour: docs/BROWSER-CLIENT.md.
//
//   import { upload } from "/assetd-upload.js";
//   const { assetId, key } = await upload(file, { baseUrl, workspaceId, getToken });
//
// Small files go in one POST /api/assets/upload; larger ones go multipart, their parts
// PUT straight to S3 with presigned URLs, `concurrency` at a time, each with its MD5
// (computed in a Web Worker, signed into its URL, sent as Content-MD5). Nothing here is
// specific to a test server: it talks to AWS, MinIO or Ceph the same way.
//
// This same file is also that Web Worker's script (the end of the file): the worker
// computes MD5s of parts of the file, so no other file needs serving.

export const MiB = 1024 * 1024;
/** S3's limits on multipart uploads. */
export const MAX_PARTS = 10000;
export const MIN_PART_SIZE = 5 * MiB;

export const DEFAULTS = Object.freeze({
    concurrency: 4,
    directThreshold: 5 * MiB,
    /** Part URLs asked for in one get-upload-urls call (the route takes at most 100). */
    batchSize: 20,
    /** Delays before the retries of a failed part (ms); jitter is added to each. */
    retryDelays: Object.freeze([0, 1000, 3000, 5000]),
    /** How long a 429 without Retry-After pauses the queue (ms). */
    throttleDelay: 5000,
    /** Per-part checksums: each part's MD5 signed into its URL and sent as Content-MD5,
     * so that S3 refuses bytes that changed on the way. Off by itself for an upload when
     * assetd does not sign them (ASSETD_PART_CHECKSUM=off, or an older assetd). */
    checksums: true,
});

const RESUME_PREFIX = "assetd-upload:";

/** An error of assetd or S3: the server's `error` sentence and the HTTP status (0: network). */
export class UploadError extends Error {
    constructor(message, status = 0, details = {}) {
        super(message);
        this.name = "UploadError";
        this.status = status;
        Object.assign(this, details);
    }
}

/** The reason to give an AbortController to pause rather than cancel: the requests in
 * flight stop, but the multipart upload and its resume record are kept, so that the same
 * file given to `upload()` again goes on where it stopped. */
export class UploadPaused extends Error {
    constructor() {
        super("The upload was paused.");
        this.name = "UploadPaused";
    }
}

function abortError(reason) {
    const paused = reason instanceof UploadPaused;
    const error = new DOMException(paused ? "The upload was paused." : "The upload was cancelled.", "AbortError");
    if (paused) Object.defineProperty(error, "paused", { value: true });
    return error;
}

/** The part size start-upload advises, for when it gives none: the smallest whole number
 * of MiB, at least 5, that fits `size` in 10,000 parts. */
export function partSizeFor(size) {
    const perPart = Math.ceil(size / MAX_PARTS);
    return Math.max(MIN_PART_SIZE, Math.ceil(perPart / MiB) * MiB);
}

/** [start, end) of part `n` (1-based). Every part but the last has `partSize` bytes. */
export function partRange(n, partSize, size) {
    const start = (n - 1) * partSize;
    return [start, Math.min(size, start + partSize)];
}

/** The `partNumbers` query of get-upload-urls: ranges where the numbers run on ("1-20",
 * "1-3,7,9-10"). */
export function formatPartNumbers(numbers) {
    const sorted = [...new Set(numbers)].sort((a, b) => a - b);
    const pieces = [];
    for (let i = 0; i < sorted.length; ) {
        let j = i;
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
        pieces.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
        i = j + 1;
    }
    return pieces.join(",");
}

/** The delay before retry `attempt` (0-based): the schedule's entry plus up to 25 %
 * jitter, so that parts failing together do not retry together. */
export function retryDelay(attempt, delays = DEFAULTS.retryDelays, random = Math.random) {
    const base = delays[Math.min(attempt, delays.length - 1)];
    return Math.round(base + base * 0.25 * random());
}

/** Bytes sent, summed over parts, as a number that only grows and never passes the total.
 * A retried part counts its bytes once (its best attempt so far). */
export class ProgressTracker {
    constructor(total, onProgress) {
        this.total = total;
        this.onProgress = onProgress;
        this.parts = new Map();
        this.sum = 0;
        this.reported = -1;
    }
    /** Part `n` (of `length` bytes) has had `loaded` bytes sent in its current attempt. */
    update(n, loaded, length) {
        const before = this.parts.get(n) || 0;
        const now = Math.min(length, Math.max(before, loaded));
        if (now === before) return;
        this.parts.set(n, now);
        this.sum += now - before;
        this.emit(Math.min(this.sum, this.total));
    }
    /** The end: exactly the total, once. */
    finish() {
        this.emit(this.total);
    }
    emit(loaded) {
        if (loaded <= this.reported) return;
        this.reported = loaded;
        if (this.onProgress) this.onProgress({ loaded, total: this.total });
    }
}

/** The key of a file's resume record: same name, size and modification time, same
 * service and workspace. */
export function resumeKey(file, baseUrl, workspaceId) {
    return RESUME_PREFIX + JSON.stringify([baseUrl, String(workspaceId), file.name, file.size, file.lastModified]);
}

function defaultStorage() {
    try {
        return globalThis.localStorage || null;
    } catch {
        return null; // storage disabled (privacy settings, sandboxed frames)
    }
}

function readRecord(storage, key) {
    if (!storage) return null;
    try {
        const record = JSON.parse(storage.getItem(key) || "null");
        if (record && typeof record.uploadId === "string" && record.assetId && Number.isInteger(record.partSize)) return record;
    } catch {}
    return null;
}

function writeRecord(storage, key, record) {
    try {
        if (storage) storage.setItem(key, JSON.stringify(record));
    } catch {} // full or disabled: the upload works, it just cannot resume
}

function removeRecord(storage, key) {
    try {
        if (storage) storage.removeItem(key);
    } catch {}
}

/** Resolves after `ms`, or rejects when `signal` aborts. */
function sleep(ms, signal) {
    return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(abortError(signal.reason));
        const timer = setTimeout(() => {
            signal.removeEventListener("abort", onAbort);
            resolve();
        }, ms);
        const onAbort = () => {
            clearTimeout(timer);
            reject(abortError(signal.reason));
        };
        signal.addEventListener("abort", onAbort, { once: true });
    });
}

function isOffline() {
    return typeof navigator !== "undefined" && navigator.onLine === false;
}

/** Resolves when the browser is online again (the `online` event), or rejects on abort. */
function waitOnline(signal, target) {
    return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(abortError(signal.reason));
        if (!isOffline() || !target) return resolve();
        const done = () => {
            target.removeEventListener("online", done);
            signal.removeEventListener("abort", onAbort);
            resolve();
        };
        const onAbort = () => {
            target.removeEventListener("online", done);
            reject(abortError(signal.reason));
        };
        target.addEventListener("online", done);
        signal.addEventListener("abort", onAbort, { once: true });
    });
}

/** The message of an error answer: assetd's `{"error": ...}`, S3's `<Message>`, or the status. */
function errorMessage(status, text, what) {
    if (text) {
        try {
            const body = JSON.parse(text);
            if (body && typeof body.error === "string") return body.error;
        } catch {}
        const match = /<Message>([^<]*)<\/Message>/.exec(text);
        if (match) return `${what}: ${match[1]}`;
    }
    return status ? `${what} failed with HTTP ${status}.` : `${what} failed: the network request did not complete.`;
}

function retryAfterMs(value, fallback) {
    if (value == null || value === "") return fallback;
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 300000);
    const date = Date.parse(value);
    return Number.isFinite(date) ? Math.max(0, Math.min(date - Date.now(), 300000)) : fallback;
}

/**
 * Uploads `file` to assetd; resolves to `{assetId, key}`.
 * @param {Blob & {name?: string, lastModified?: number}} file
 * @param {import("./assetd-upload").UploadOptions} options
 * @returns {Promise<import("./assetd-upload").UploadResult>}
 */
export async function upload(file, options) {
    const ctx = context(file, options);
    const o = ctx.o;
    const signal = ctx.controller.signal;
    const forward = () => ctx.controller.abort(o.signal.reason);
    if (o.signal) {
        if (o.signal.aborted) throw abortError(o.signal.reason);
        o.signal.addEventListener("abort", forward, { once: true });
    }
    try {
        if (file.size < o.directThreshold) return await directUpload(ctx);
        return await multipartUpload(ctx);
    } catch (error) {
        if (signal.aborted && o.signal?.aborted) throw abortError(o.signal.reason);
        throw error;
    } finally {
        o.signal?.removeEventListener("abort", forward);
    }
}

/**
 * Gives up a paused (or failed) multipart upload of `file` for good: abort-upload, and its
 * resume record forgotten. Resolves to false when there was none.
 * @param {Blob & {name?: string, lastModified?: number}} file
 * @param {import("./assetd-upload").UploadOptions} options
 */
export async function abandon(file, options) {
    const ctx = context(file, options);
    const key = resumeKey(file, ctx.baseUrl, ctx.o.workspaceId);
    const record = readRecord(ctx.storage, key);
    if (!record) return false;
    removeRecord(ctx.storage, key);
    await api(ctx, "POST", "/s3/abort-upload", {
        body: { uploadId: record.uploadId, assetId: record.assetId, workspaceId: ctx.o.workspaceId },
    });
    return true;
}

function context(file, options) {
    const o = { ...DEFAULTS, ...options };
    if (!o.workspaceId) throw new TypeError("upload: workspaceId is required");
    if (typeof o.getToken !== "function") throw new TypeError("upload: getToken must be a function");
    if (!(o.concurrency >= 1)) throw new TypeError("upload: concurrency must be at least 1");
    return {
        o,
        file,
        baseUrl: String(o.baseUrl ?? (typeof location !== "undefined" ? location.origin : "")).replace(/\/+$/, ""),
        fetch: o.fetch || globalThis.fetch.bind(globalThis),
        xhrFactory: o.xhrFactory || (() => new XMLHttpRequest()),
        storage: o.storage === undefined ? defaultStorage() : o.storage,
        random: o.random || Math.random,
        now: o.now || Date.now,
        onlineTarget: o.onlineTarget || (typeof window !== "undefined" ? window : null),
        hashPart: o.hashPart || null,
        // Aborts everything in flight: the caller's signal, or a failure of one part.
        controller: new AbortController(),
    };
}

/** One JSON call to assetd, retried (on the network, 5xx and 429) when `idempotent`, or
 * only on 429 and 503 (nothing was done) when not. */
async function api(ctx, method, path, { query, body, idempotent = true } = {}) {
    const url = new URL(ctx.baseUrl + path, typeof location !== "undefined" ? location.href : undefined);
    for (const [name, value] of Object.entries(query || {})) {
        if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const signal = ctx.controller.signal;
    for (let attempt = 0; ; attempt++) {
        let status = 0;
        let text = "";
        let retryAfter = null;
        // Outside the try: a getToken that throws is the caller's error, not the network's.
        const headers = { Authorization: `Bearer ${await ctx.o.getToken()}` };
        try {
            if (body !== undefined) headers["Content-Type"] = "application/json";
            const response = await ctx.fetch(url.toString(), {
                method,
                headers,
                body: body === undefined ? undefined : JSON.stringify(body),
                signal,
                cache: "no-store",
            });
            status = response.status;
            text = await response.text();
            retryAfter = response.headers.get("Retry-After");
            if (response.ok) return text ? JSON.parse(text) : {};
        } catch (error) {
            if (signal.aborted) throw abortError(signal.reason);
            if (error instanceof SyntaxError) throw new UploadError(`${method} ${path}: the answer is not JSON.`, status);
            status = 0;
        }
        const retryable = idempotent ? status === 0 || status === 429 || status >= 500 : status === 429 || status === 503;
        if (!retryable || attempt >= ctx.o.retryDelays.length) {
            throw new UploadError(errorMessage(status, text, `${method} ${path}`), status);
        }
        if (status === 0 && isOffline()) {
            await waitOnline(signal, ctx.onlineTarget);
            attempt--;
            continue;
        }
        const delay = status === 429 || status === 503
            ? retryAfterMs(retryAfter, retryDelay(attempt, ctx.o.retryDelays, ctx.random))
            : retryDelay(attempt, ctx.o.retryDelays, ctx.random);
        await sleep(delay, signal);
    }
}

/** The response headers this page may read, by lower-case name: for a cross-origin answer
 * (a part PUT to S3) only the CORS-safelisted ones and those the bucket's CORS rules expose
 * (`assetd setup-bucket`: ETag). getAllResponseHeaders() leaves the others out silently,
 * whereas getResponseHeader() of a header not exposed logs "Refused to get unsafe header"
 * as an error in the console. So S3's Retry-After, which no rule exposes, is never asked
 * for; assetd's own answers (same origin, or nginx's Expose-Headers) do carry it. */
function responseHeaders(xhr) {
    const headers = new Map();
    const raw = typeof xhr.getAllResponseHeaders === "function" ? xhr.getAllResponseHeaders() : "";
    for (const line of String(raw || "").split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    return headers;
}

/** Sends one request with XMLHttpRequest (its upload events count the bytes really sent).
 * Resolves to {status, text, etag, retryAfter}; status 0 is a network error. */
function send(ctx, method, url, body, onSent, headers = {}) {
    const signal = ctx.controller.signal;
    return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(abortError(signal.reason));
        const xhr = ctx.xhrFactory();
        const onAbort = () => xhr.abort();
        const settle = (result) => {
            signal.removeEventListener("abort", onAbort);
            if (signal.aborted) reject(abortError(signal.reason));
            else resolve(result);
        };
        xhr.open(method, url, true);
        for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
        if (onSent && xhr.upload) xhr.upload.onprogress = (event) => onSent(event.loaded, event.total);
        xhr.onload = () => {
            const readable = responseHeaders(xhr);
            settle({
                status: xhr.status,
                text: typeof xhr.responseText === "string" ? xhr.responseText : "",
                etag: readable.get("etag") ?? null,
                retryAfter: readable.get("retry-after") ?? null,
            });
        };
        xhr.onerror = () => settle({ status: 0, text: "", etag: null, retryAfter: null });
        xhr.ontimeout = xhr.onerror;
        xhr.onabort = () => settle({ status: 0, text: "", etag: null, retryAfter: null });
        signal.addEventListener("abort", onAbort, { once: true });
        xhr.send(body);
    });
}

/** POST /api/assets/upload: one request, its progress scaled from the form's bytes to the
 * file's. Retried only on 429 and 503 (nothing was stored). */
async function directUpload(ctx) {
    const { file, o } = ctx;
    const total = file.size;
    const progress = new ProgressTracker(total, o.onProgress);
    const url = `${ctx.baseUrl}/api/assets/upload?workspaceId=${encodeURIComponent(o.workspaceId)}`;
    for (let attempt = 0; ; attempt++) {
        const form = new FormData();
        form.append("workspaceId", String(o.workspaceId));
        form.append("file", file, file.name || "file");
        const headers = { Authorization: `Bearer ${await o.getToken()}` };
        const answer = await send(ctx, "POST", url, form, (loaded, formTotal) => {
            if (formTotal > 0) progress.update(1, Math.floor((loaded / formTotal) * total), total);
        }, headers);
        if (answer.status >= 200 && answer.status < 300) {
            let asset;
            try {
                asset = JSON.parse(answer.text).asset;
            } catch {}
            if (!asset || asset.id == null) throw new UploadError("POST /api/assets/upload: the answer names no asset.", answer.status);
            progress.finish();
            return { assetId: String(asset.id), key: asset.key, asset };
        }
        const retryable = answer.status === 429 || answer.status === 503;
        if (!retryable || attempt >= o.retryDelays.length) {
            throw new UploadError(errorMessage(answer.status, answer.text, "POST /api/assets/upload"), answer.status);
        }
        await sleep(retryAfterMs(answer.retryAfter, retryDelay(attempt, o.retryDelays, ctx.random)), ctx.controller.signal);
    }
}

/** start-upload, or the stored upload of this same file when S3 still has it. */
async function beginMultipart(ctx, key) {
    const { file, o } = ctx;
    const stored = readRecord(ctx.storage, key);
    if (stored) {
        try {
            const parts = await listAllParts(ctx, stored);
            return { upload: stored, parts };
        } catch (error) {
            if (error.name === "AbortError") throw error;
            // 404/409: aborted, expired or completed; start again.
            if (!(error instanceof UploadError) || error.status < 400 || error.status >= 500) throw error;
            removeRecord(ctx.storage, key);
        }
    }
    const started = await api(ctx, "GET", "/s3/start-upload", {
        idempotent: false,
        query: {
            workspaceId: o.workspaceId,
            fileType: file.type || "application/octet-stream",
            fileName: file.name || undefined,
            fileSize: file.size,
        },
    });
    const upload = {
        uploadId: started.uploadId,
        assetId: String(started.assetId),
        key: started.key,
        partSize: Number(started.partSize) || partSizeFor(file.size),
    };
    writeRecord(ctx.storage, key, upload);
    return { upload, parts: new Map() };
}

/** list-parts as PartNumber -> {etag, size}. assetd gathers every page of S3's ListParts
 * (1,000 parts a page) into one answer. */
async function listAllParts(ctx, upload) {
    const answer = await api(ctx, "GET", "/s3/list-parts", {
        query: { workspaceId: ctx.o.workspaceId, assetId: upload.assetId, uploadId: upload.uploadId },
    });
    const parts = new Map();
    for (const part of answer.parts || []) parts.set(Number(part.PartNumber), { etag: part.ETag, size: Number(part.Size) });
    return parts;
}

async function multipartUpload(ctx) {
    const { file, o } = ctx;
    const signal = ctx.controller.signal;
    const key = resumeKey(file, ctx.baseUrl, o.workspaceId);
    const { upload, parts: existing } = await beginMultipart(ctx, key);
    try {
        return await sendParts(ctx, upload, existing, key);
    } catch (error) {
        if (signal.aborted && o.signal?.aborted) {
            await cancel(ctx, upload, key);
            throw abortError(o.signal.reason);
        }
        throw error;
    }
}

/** PUTs the parts S3 lacks, `concurrency` at a time, then completes the upload. */
async function sendParts(ctx, upload, existing, key) {
    const { file, o } = ctx;
    const signal = ctx.controller.signal;
    const partSize = upload.partSize;
    const count = Math.max(1, Math.ceil(file.size / partSize));
    if (count > MAX_PARTS) throw new UploadError(`The part size ${partSize} makes ${count} parts, more than ${MAX_PARTS}.`, 0);

    const progress = new ProgressTracker(file.size, o.onProgress);
    const etags = new Map();
    const missing = [];
    for (let n = 1; n <= count; n++) {
        const [start, end] = partRange(n, partSize, file.size);
        const have = existing.get(n);
        // A part is kept only when S3 has exactly this part's bytes count.
        if (have && have.size === end - start && have.etag) {
            etags.set(n, have.etag);
            progress.update(n, end - start, end - start);
        } else {
            missing.push(n);
        }
    }

    const state = {
        queue: missing,
        limit: Math.min(o.concurrency, Math.max(1, missing.length)),
        urls: new Map(), // partNumber -> {url, expiresAt}
        batch: null, // the get-upload-urls call in flight
        pausedUntil: 0,
        failure: null,
        // Per-part checksums: on unless turned off, or until assetd shows it signs none.
        checksums: o.checksums !== false && missing.length > 0,
        digests: new Map(), // partNumber -> promise of its base64 MD5
        hashed: new Map(), // partNumber -> base64 MD5, once computed
    };
    const hasher = state.checksums ? partHasher(ctx) : null;
    // The MD5s of the first parts are under way before the first URL is asked for.
    prefetchDigests();

    const workers = [];
    for (let i = 0; i < state.limit; i++) workers.push(worker(i));
    try {
        await Promise.allSettled(workers);
    } finally {
        hasher?.close();
    }
    if (state.failure) throw state.failure;
    if (signal.aborted) throw abortError(signal.reason);

    const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([PartNumber, ETag]) => ({ ETag, PartNumber }));
    const done = await api(ctx, "POST", "/s3/complete-upload", {
        body: { uploadId: upload.uploadId, assetId: upload.assetId, workspaceId: o.workspaceId, parts },
    });
    removeRecord(ctx.storage, key);
    progress.finish();
    return { assetId: upload.assetId, key: done.key || upload.key };

    async function worker(index) {
        try {
            while (state.queue.length && !signal.aborted) {
                if (index >= state.limit) return; // the concurrency was lowered
                await gate();
                const n = state.queue.shift();
                if (n === undefined) return;
                await sendPart(n);
            }
        } catch (error) {
            // The first failure stops every part in flight; an abort is not a failure.
            if (!signal.aborted) {
                state.failure = error;
                ctx.controller.abort(error);
            }
            throw error;
        }
    }

    /** Waits while the queue is paused: offline, or after a 429. */
    async function gate() {
        for (;;) {
            if (isOffline()) await waitOnline(signal, ctx.onlineTarget);
            const wait = state.pausedUntil - ctx.now();
            if (wait <= 0) return;
            await sleep(wait, signal);
        }
    }

    /** The base64 MD5 of part `n`, computed once (in the hasher's Web Worker). */
    function digestOf(n) {
        if (!state.digests.has(n)) {
            const [start, end] = partRange(n, partSize, file.size);
            const digest = hasher.hash(file.slice(start, end)).then((md5) => {
                state.hashed.set(n, md5);
                return md5;
            });
            digest.catch(() => state.digests.delete(n)); // asked again by whoever needs it
            state.digests.set(n, digest);
        }
        return state.digests.get(n);
    }

    /** Keeps the hasher a batch ahead of the parts being sent: each part's MD5 is computed
     * while the parts before it upload, so that hashing costs the upload no time. */
    function prefetchDigests() {
        if (!state.checksums) return;
        const ahead = Math.min(100, Math.max(1, o.batchSize)) + state.limit;
        for (const n of state.queue.slice(0, ahead)) digestOf(n).catch(() => {});
    }

    /** A presigned URL for part `n` ({url, md5}), fresh for a while yet; asks for a batch
     * of the parts that come next when it has none (with checksums, their contentMD5s). */
    async function urlFor(n, asked = 0) {
        const fresh = (entry) => entry && entry.expiresAt - ctx.now() > entry.margin;
        if (fresh(state.urls.get(n))) return state.urls.get(n);
        if (!state.batch) state.batch = askBatch(n, fresh).finally(() => {
            state.batch = null;
        });
        const numbers = await state.batch;
        if (state.urls.has(n)) return state.urls.get(n);
        // Another worker's batch did not hold n: ask again, counting only batches that did.
        if (!numbers.includes(n)) return urlFor(n, asked);
        if (asked >= 2) throw new UploadError(`get-upload-urls gave no URL for part ${n}.`, 0);
        return urlFor(n, asked + 1);
    }

    /** One get-upload-urls call for `n` and the parts queued after it; resolves to the
     * part numbers it asked for. */
    async function askBatch(n, fresh) {
        const limit = Math.min(100, Math.max(1, o.batchSize));
        const wanted = [n, ...state.queue.filter((m) => m !== n)].filter((m) => !fresh(state.urls.get(m)));
        const checksums = state.checksums;
        let numbers = wanted.slice(0, limit);
        if (checksums) {
            // Only n's MD5 is waited for; the batch takes the parts after it whose MD5 is
            // ready. Waiting for a whole batch's MD5s would leave the parts in flight idle
            // while the hasher catches up; once it runs ahead (it mostly does), the
            // batches are whole again.
            await digestOf(n);
            numbers = wanted.filter((m) => m === n || state.hashed.has(m)).slice(0, limit);
        }
        numbers.sort((a, b) => a - b);
        const query = { workspaceId: o.workspaceId, assetId: upload.assetId, UploadId: upload.uploadId };
        query.partNumbers = formatPartNumbers(numbers);
        if (checksums) query.contentMD5 = numbers.map((m) => state.hashed.get(m)).join(",");
        const answer = await api(ctx, "GET", "/s3/get-upload-urls", { query });
        const life = Number(answer.expiresIn) * 1000 || 3600000;
        // Asked for again when a quarter of its life, at most 5 minutes, is left.
        const margin = Math.min(300000, life / 4);
        const fetched = ctx.now();
        for (const item of answer.urls || []) {
            const m = Number(item.partNumber);
            // Sent with Content-MD5 only when assetd signed it in (X-Amz-SignedHeaders):
            // an assetd with ASSETD_PART_CHECKSUM=off, or older, signs none, and then
            // hashing stops for this upload.
            const md5 = checksums && signsContentMD5(item.url) ? state.hashed.get(m) : null;
            if (checksums && !md5) state.checksums = false;
            state.urls.set(m, { url: item.url, md5, expiresAt: fetched + life, margin });
        }
        return numbers;
    }

    /** PUTs part `n` until it succeeds or fails for good. */
    async function sendPart(n) {
        const [start, end] = partRange(n, partSize, file.size);
        const length = end - start;
        let retries = 0;
        let renewals = 0;
        let throttles = 0;
        let badDigests = 0;
        for (;;) {
            const entry = await urlFor(n);
            prefetchDigests();
            const headers = entry.md5 ? { "Content-MD5": entry.md5 } : {};
            const answer = await send(ctx, "PUT", entry.url, file.slice(start, end), (loaded) => progress.update(n, loaded, length), headers);
            const { status } = answer;
            if (status >= 200 && status < 300) {
                if (!answer.etag) {
                    throw new UploadError(
                        "S3 accepted a part but its ETag header cannot be read: the bucket's CORS rules must expose ETag (assetd setup-bucket sets them).",
                        status,
                    );
                }
                etags.set(n, answer.etag);
                progress.update(n, length, length);
                return;
            }
            if (status === 400 && entry.md5 && s3ErrorCode(answer.text) === "BadDigest") {
                // S3 received other bytes than the ones hashed: changed on the way (a proxy,
                // the network, memory), or the file changed on disk. Once: read the part
                // from the file again, hash it again, and send it again (a fresh URL if
                // its MD5 changed). Twice: give up, saying so.
                if (badDigests++ >= 1) {
                    throw new UploadError(
                        `Part ${n} reached S3 corrupted twice (BadDigest: the bytes S3 received do not match the MD5 ${entry.md5} read from the file), so S3 refused it. Something between this browser and S3 changes data, or the file is changing; try again later, or on another network.`,
                        status,
                        { partNumber: n, code: "BadDigest" },
                    );
                }
                state.digests.delete(n);
                state.hashed.delete(n);
                if ((await digestOf(n)) !== entry.md5) state.urls.delete(n);
                else state.hashed.set(n, entry.md5);
                if (ctx.o.onRetry) ctx.o.onRetry({ partNumber: n, attempt: badDigests, status, code: "BadDigest" });
                continue;
            }
            if (status === 403 && renewals < 2) {
                // Most likely the URL expired (a laptop that slept): a fresh one, and fewer
                // parts at once, since the network is evidently slower than planned.
                renewals++;
                state.urls.delete(n);
                state.limit = Math.max(1, Math.floor(state.limit / 2));
                continue;
            }
            if (status === 429 && throttles < 10) {
                throttles++;
                state.pausedUntil = Math.max(state.pausedUntil, ctx.now() + retryAfterMs(answer.retryAfter, o.throttleDelay));
                await gate();
                continue;
            }
            if (status === 0 && isOffline()) {
                await waitOnline(signal, ctx.onlineTarget); // not the part's fault: no retry spent
                continue;
            }
            const transient = status === 0 || status >= 500;
            if (!transient || retries >= o.retryDelays.length) {
                throw new UploadError(errorMessage(status, answer.text, `PUT of part ${n}`), status, { partNumber: n });
            }
            await sleep(retryDelay(retries, o.retryDelays, ctx.random), signal);
            retries++;
            if (ctx.o.onRetry) ctx.o.onRetry({ partNumber: n, attempt: retries, status });
        }
    }
}

/** Whether a presigned URL signs `content-md5` (its X-Amz-SignedHeaders names it). */
export function signsContentMD5(url) {
    try {
        const signed = new URL(url).searchParams.get("X-Amz-SignedHeaders") || "";
        return signed.split(";").includes("content-md5");
    } catch {
        return false;
    }
}

/** S3's error code (`<Code>`) in an error answer's XML, or null. */
function s3ErrorCode(text) {
    const match = /<Code>([^<]*)<\/Code>/.exec(text || "");
    return match ? match[1] : null;
}

/** MD5s of parts, `hash(blob)` -> promise of base64, in a Web Worker that runs this same
 * module (so the page's thread never hashes, and nothing else is fetched). Where no
 * worker can start (a page that imported this module from another origin: workers must
 * be same-origin; a CSP without `worker-src`/`script-src 'self'`; no Worker at all, as in
 * node), the parts are hashed on the page's thread, 8 MiB at a time. */
function partHasher(ctx) {
    if (ctx.hashPart) return { hash: ctx.hashPart, close() {} };
    let worker = null;
    let nextId = 0;
    const pending = new Map();
    const fallBack = () => {
        worker?.terminate();
        worker = null;
        for (const job of pending.values()) md5OfBlob(job.blob).then(job.resolve, job.reject);
        pending.clear();
    };
    try {
        if (typeof Worker === "function") {
            worker = new Worker(import.meta.url, { type: "module", name: WORKER_NAME });
            worker.onmessage = ({ data }) => {
                const job = pending.get(data.id);
                if (!job) return;
                pending.delete(data.id);
                if (data.error) job.reject(new UploadError(`The MD5 of a part could not be computed: ${data.error}`, 0));
                else job.resolve(data.md5);
            };
            worker.onerror = (event) => {
                event.preventDefault?.();
                fallBack();
            };
        }
    } catch {
        worker = null;
    }
    return {
        hash(blob) {
            if (!worker) return md5OfBlob(blob);
            return new Promise((resolve, reject) => {
                const id = ++nextId;
                pending.set(id, { blob, resolve, reject });
                worker.postMessage({ id, blob });
            });
        },
        close() {
            worker?.terminate();
            worker = null;
        },
    };
}

/** After an abort: a pause keeps the upload for a later resume; a cancel aborts it in S3
 * (abort-upload) and forgets it. */
async function cancel(ctx, upload, key) {
    const reason = ctx.o.signal?.reason;
    if (reason instanceof UploadPaused) return;
    removeRecord(ctx.storage, key);
    // A controller of its own: the upload's is aborted already.
    const own = { ...ctx, controller: new AbortController() };
    try {
        await api(own, "POST", "/s3/abort-upload", {
            body: { uploadId: upload.uploadId, assetId: upload.assetId, workspaceId: ctx.o.workspaceId },
        });
    } catch {
        // The bucket's lifecycle rule and assetd's reconciler clean up what this missed.
    }
}

// --- MD5, and the Web Worker that computes it ---------------------------------------

/** MD5 (RFC 1321) of bytes, incrementally: `new MD5().update(bytes)...digest()` gives the
 * 16-byte digest. Written here on typed arrays because WebCrypto has no MD5, and S3's
 * Content-MD5 needs one; tested against RFC 1321's vectors and Python's hashlib
 * (Tests/web). Not for security: S3 uses it to detect corrupted bytes. */
export class MD5 {
    constructor() {
        this.state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
        this.tail = new Uint8Array(64);
        this.tailLength = 0;
        this.length = 0;
    }

    /** Adds `bytes` (a Uint8Array, or an ArrayBuffer). */
    update(bytes) {
        const p = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
        let o = 0;
        this.length += p.length;
        if (this.tailLength) {
            const take = Math.min(64 - this.tailLength, p.length);
            this.tail.set(p.subarray(0, take), this.tailLength);
            this.tailLength += take;
            o = take;
            if (this.tailLength < 64) return this;
            md5Block(this.state, this.tail, 0);
            this.tailLength = 0;
        }
        const end = p.length - 63;
        for (; o < end; o += 64) md5Block(this.state, p, o);
        if (o < p.length) {
            this.tail.set(p.subarray(o), 0);
            this.tailLength = p.length - o;
        }
        return this;
    }

    /** The digest, 16 bytes; the object is spent after it. */
    digest() {
        const bits = this.length * 8;
        const pad = new Uint8Array((this.tailLength < 56 ? 56 : 120) - this.tailLength + 8);
        pad[0] = 0x80;
        const at = pad.length - 8;
        // The length in bits, 64-bit little-endian (Number holds it exactly below 2^53).
        pad[at] = bits & 0xff;
        pad[at + 1] = (bits >>> 8) & 0xff;
        pad[at + 2] = (bits >>> 16) & 0xff;
        pad[at + 3] = (bits >>> 24) & 0xff;
        const high = Math.floor(bits / 4294967296);
        pad[at + 4] = high & 0xff;
        pad[at + 5] = (high >>> 8) & 0xff;
        pad[at + 6] = (high >>> 16) & 0xff;
        pad[at + 7] = (high >>> 24) & 0xff;
        this.length -= pad.length; // update() counts it; the length was taken above
        this.update(pad);
        const out = new Uint8Array(16);
        for (let i = 0; i < 4; i++) {
            const v = this.state[i];
            out[4 * i] = v & 0xff;
            out[4 * i + 1] = (v >>> 8) & 0xff;
            out[4 * i + 2] = (v >>> 16) & 0xff;
            out[4 * i + 3] = (v >>> 24) & 0xff;
        }
        return out;
    }
}

/** Base64 of bytes (as a Content-MD5 header carries an MD5). */
export function base64(bytes) {
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text);
}

/** The base64 MD5 of a Blob (a part of the file), read 8 MiB at a time so that a large
 * part never sits in memory whole. */
export async function md5OfBlob(blob) {
    const md5 = new MD5();
    const step = 8 * MiB;
    for (let at = 0; at < blob.size; at += step) {
        md5.update(new Uint8Array(await blob.slice(at, Math.min(blob.size, at + step)).arrayBuffer()));
    }
    return base64(md5.digest());
}

/** One 64-byte block of MD5 (RFC 1321, section 3.4) at `o` in the bytes `p`, into the
 * state `s` (an Int32Array of 4). Unrolled; the constants are RFC 1321's table T. */
function md5Block(s, p, o) {
    const w0 = p[o + 0] | (p[o + 1] << 8) | (p[o + 2] << 16) | (p[o + 3] << 24);
    const w1 = p[o + 4] | (p[o + 5] << 8) | (p[o + 6] << 16) | (p[o + 7] << 24);
    const w2 = p[o + 8] | (p[o + 9] << 8) | (p[o + 10] << 16) | (p[o + 11] << 24);
    const w3 = p[o + 12] | (p[o + 13] << 8) | (p[o + 14] << 16) | (p[o + 15] << 24);
    const w4 = p[o + 16] | (p[o + 17] << 8) | (p[o + 18] << 16) | (p[o + 19] << 24);
    const w5 = p[o + 20] | (p[o + 21] << 8) | (p[o + 22] << 16) | (p[o + 23] << 24);
    const w6 = p[o + 24] | (p[o + 25] << 8) | (p[o + 26] << 16) | (p[o + 27] << 24);
    const w7 = p[o + 28] | (p[o + 29] << 8) | (p[o + 30] << 16) | (p[o + 31] << 24);
    const w8 = p[o + 32] | (p[o + 33] << 8) | (p[o + 34] << 16) | (p[o + 35] << 24);
    const w9 = p[o + 36] | (p[o + 37] << 8) | (p[o + 38] << 16) | (p[o + 39] << 24);
    const w10 = p[o + 40] | (p[o + 41] << 8) | (p[o + 42] << 16) | (p[o + 43] << 24);
    const w11 = p[o + 44] | (p[o + 45] << 8) | (p[o + 46] << 16) | (p[o + 47] << 24);
    const w12 = p[o + 48] | (p[o + 49] << 8) | (p[o + 50] << 16) | (p[o + 51] << 24);
    const w13 = p[o + 52] | (p[o + 53] << 8) | (p[o + 54] << 16) | (p[o + 55] << 24);
    const w14 = p[o + 56] | (p[o + 57] << 8) | (p[o + 58] << 16) | (p[o + 59] << 24);
    const w15 = p[o + 60] | (p[o + 61] << 8) | (p[o + 62] << 16) | (p[o + 63] << 24);
    let a = s[0], b = s[1], c = s[2], d = s[3], x;
    x = (a + ((b & c) | (~b & d)) + w0 + -680876936) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
    x = (d + ((a & b) | (~a & c)) + w1 + -389564586) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
    x = (c + ((d & a) | (~d & b)) + w2 + 606105819) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
    x = (b + ((c & d) | (~c & a)) + w3 + -1044525330) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
    x = (a + ((b & c) | (~b & d)) + w4 + -176418897) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
    x = (d + ((a & b) | (~a & c)) + w5 + 1200080426) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
    x = (c + ((d & a) | (~d & b)) + w6 + -1473231341) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
    x = (b + ((c & d) | (~c & a)) + w7 + -45705983) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
    x = (a + ((b & c) | (~b & d)) + w8 + 1770035416) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
    x = (d + ((a & b) | (~a & c)) + w9 + -1958414417) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
    x = (c + ((d & a) | (~d & b)) + w10 + -42063) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
    x = (b + ((c & d) | (~c & a)) + w11 + -1990404162) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
    x = (a + ((b & c) | (~b & d)) + w12 + 1804603682) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
    x = (d + ((a & b) | (~a & c)) + w13 + -40341101) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
    x = (c + ((d & a) | (~d & b)) + w14 + -1502002290) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
    x = (b + ((c & d) | (~c & a)) + w15 + 1236535329) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
    x = (a + ((b & d) | (c & ~d)) + w1 + -165796510) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
    x = (d + ((a & c) | (b & ~c)) + w6 + -1069501632) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
    x = (c + ((d & b) | (a & ~b)) + w11 + 643717713) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
    x = (b + ((c & a) | (d & ~a)) + w0 + -373897302) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
    x = (a + ((b & d) | (c & ~d)) + w5 + -701558691) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
    x = (d + ((a & c) | (b & ~c)) + w10 + 38016083) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
    x = (c + ((d & b) | (a & ~b)) + w15 + -660478335) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
    x = (b + ((c & a) | (d & ~a)) + w4 + -405537848) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
    x = (a + ((b & d) | (c & ~d)) + w9 + 568446438) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
    x = (d + ((a & c) | (b & ~c)) + w14 + -1019803690) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
    x = (c + ((d & b) | (a & ~b)) + w3 + -187363961) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
    x = (b + ((c & a) | (d & ~a)) + w8 + 1163531501) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
    x = (a + ((b & d) | (c & ~d)) + w13 + -1444681467) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
    x = (d + ((a & c) | (b & ~c)) + w2 + -51403784) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
    x = (c + ((d & b) | (a & ~b)) + w7 + 1735328473) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
    x = (b + ((c & a) | (d & ~a)) + w12 + -1926607734) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
    x = (a + (b ^ c ^ d) + w5 + -378558) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
    x = (d + (a ^ b ^ c) + w8 + -2022574463) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
    x = (c + (d ^ a ^ b) + w11 + 1839030562) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
    x = (b + (c ^ d ^ a) + w14 + -35309556) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
    x = (a + (b ^ c ^ d) + w1 + -1530992060) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
    x = (d + (a ^ b ^ c) + w4 + 1272893353) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
    x = (c + (d ^ a ^ b) + w7 + -155497632) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
    x = (b + (c ^ d ^ a) + w10 + -1094730640) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
    x = (a + (b ^ c ^ d) + w13 + 681279174) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
    x = (d + (a ^ b ^ c) + w0 + -358537222) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
    x = (c + (d ^ a ^ b) + w3 + -722521979) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
    x = (b + (c ^ d ^ a) + w6 + 76029189) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
    x = (a + (b ^ c ^ d) + w9 + -640364487) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
    x = (d + (a ^ b ^ c) + w12 + -421815835) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
    x = (c + (d ^ a ^ b) + w15 + 530742520) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
    x = (b + (c ^ d ^ a) + w2 + -995338651) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
    x = (a + (c ^ (b | ~d)) + w0 + -198630844) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
    x = (d + (b ^ (a | ~c)) + w7 + 1126891415) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
    x = (c + (a ^ (d | ~b)) + w14 + -1416354905) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
    x = (b + (d ^ (c | ~a)) + w5 + -57434055) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
    x = (a + (c ^ (b | ~d)) + w12 + 1700485571) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
    x = (d + (b ^ (a | ~c)) + w3 + -1894986606) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
    x = (c + (a ^ (d | ~b)) + w10 + -1051523) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
    x = (b + (d ^ (c | ~a)) + w1 + -2054922799) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
    x = (a + (c ^ (b | ~d)) + w8 + 1873313359) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
    x = (d + (b ^ (a | ~c)) + w15 + -30611744) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
    x = (c + (a ^ (d | ~b)) + w6 + -1560198380) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
    x = (b + (d ^ (c | ~a)) + w13 + 1309151649) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
    x = (a + (c ^ (b | ~d)) + w4 + -145523070) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
    x = (d + (b ^ (a | ~c)) + w11 + -1120210379) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
    x = (c + (a ^ (d | ~b)) + w2 + 718787259) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
    x = (b + (d ^ (c | ~a)) + w9 + -343485551) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
    s[0] = (s[0] + a) | 0;
    s[1] = (s[1] + b) | 0;
    s[2] = (s[2] + c) | 0;
    s[3] = (s[3] + d) | 0;
}

const WORKER_NAME = "assetd-upload-md5";

// Run as the hasher's Web Worker: one part at a time, in the order asked, so that at most
// one part's 8 MiB slice is in memory.
if (typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope && globalThis.name === WORKER_NAME) {
    let queue = Promise.resolve();
    globalThis.onmessage = ({ data }) => {
        queue = queue.then(async () => {
            try {
                globalThis.postMessage({ id: data.id, md5: await md5OfBlob(data.blob) });
            } catch (error) {
                globalThis.postMessage({ id: data.id, error: String(error?.message || error) });
            }
        });
    };
}
