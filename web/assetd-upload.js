// assetd-upload.js: the browser client of assetd. One dependency-free ES module, no
// build step. Types: assetd-upload.d.ts beside it. Behaviour: docs/BROWSER-CLIENT.md.
//
//   import { upload } from "/assetd-upload.js";
//   const { assetId, key } = await upload(file, { baseUrl, workspaceId, getToken });
//
// Small files go in one POST /api/assets/upload; larger ones go multipart, their parts
// PUT straight to S3 with presigned URLs, `concurrency` at a time. Nothing here is
// specific to a test server: it talks to AWS, MinIO or Ceph the same way.

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
    };

    const workers = [];
    for (let i = 0; i < state.limit; i++) workers.push(worker(i));
    await Promise.allSettled(workers);
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

    /** A presigned URL for part `n`, fresh for a while yet; asks for a batch of the parts
     * that come next when it has none. */
    async function urlFor(n, asked = 0) {
        const fresh = (entry) => entry && entry.expiresAt - ctx.now() > entry.margin;
        if (fresh(state.urls.get(n))) return state.urls.get(n).url;
        if (!state.batch) {
            const wanted = [n, ...state.queue.filter((m) => m !== n)].filter((m) => !fresh(state.urls.get(m)));
            const numbers = wanted.slice(0, Math.min(100, Math.max(1, o.batchSize)));
            state.batch = api(ctx, "GET", "/s3/get-upload-urls", {
                query: { workspaceId: o.workspaceId, assetId: upload.assetId, UploadId: upload.uploadId, partNumbers: formatPartNumbers(numbers) },
            }).then((answer) => {
                const life = Number(answer.expiresIn) * 1000 || 3600000;
                // Asked for again when a quarter of its life, at most 5 minutes, is left.
                const margin = Math.min(300000, life / 4);
                const fetched = ctx.now();
                for (const item of answer.urls || []) {
                    state.urls.set(Number(item.partNumber), { url: item.url, expiresAt: fetched + life, margin });
                }
            }).finally(() => {
                state.batch = null;
            });
        }
        await state.batch;
        // Another worker's batch may not have held n: ask again.
        if (state.urls.has(n)) return state.urls.get(n).url;
        if (asked >= 2) throw new UploadError(`get-upload-urls gave no URL for part ${n}.`, 0);
        return urlFor(n, asked + 1);
    }

    /** PUTs part `n` until it succeeds or fails for good. */
    async function sendPart(n) {
        const [start, end] = partRange(n, partSize, file.size);
        const length = end - start;
        let retries = 0;
        let renewals = 0;
        let throttles = 0;
        for (;;) {
            const url = await urlFor(n);
            const answer = await send(ctx, "PUT", url, file.slice(start, end), (loaded) => progress.update(n, loaded, length));
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
