// Types of assetd-upload.js, the browser client of assetd (docs/BROWSER-CLIENT.md).

export interface Progress {
    /** Bytes of the file sent so far: only grows, never passes `total`. */
    loaded: number;
    /** The file's size; the last event has loaded === total. */
    total: number;
}

/** The subset of XMLHttpRequest the client uses (for `xhrFactory`). */
export interface XhrLike {
    open(method: string, url: string, async: boolean): void;
    setRequestHeader(name: string, value: string): void;
    send(body: Blob | FormData): void;
    abort(): void;
    /** The client reads response headers only here: what CORS lets the page see. */
    getAllResponseHeaders(): string;
    readonly status: number;
    readonly responseText: string;
    readonly upload?: { onprogress: ((event: { loaded: number; total: number }) => void) | null };
    onload: (() => void) | null;
    onerror: (() => void) | null;
    onabort: (() => void) | null;
    ontimeout: (() => void) | null;
}

/** What localStorage offers, for the resume records. */
export interface ResumeStorage {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
    removeItem(key: string): void;
}

export interface UploadOptions {
    /** assetd's origin as the browser reaches it, e.g. "https://assets.example.com".
     * Default: the page's own origin. */
    baseUrl?: string;
    /** The workspace the asset goes into (must be in the token's `workspaces`). */
    workspaceId: number | string;
    /** Returns the bearer token; called before every assetd request, so it may refresh. */
    getToken: () => string | Promise<string>;
    onProgress?: (progress: Progress) => void;
    /** Aborting cancels: requests stop, abort-upload is called, the promise rejects with an
     * AbortError. Aborting with `new UploadPaused()` as the reason pauses instead. */
    signal?: AbortSignal;
    /** Parts in flight at once. Default 4. */
    concurrency?: number;
    /** Files smaller than this go through POST /api/assets/upload. Default 5 MiB. */
    directThreshold?: number;
    /** Part URLs asked for per get-upload-urls call (1..100). Default 20. */
    batchSize?: number;
    /** Delays (ms) before the retries of a failed part; 25 % jitter is added. Default
     * [0, 1000, 3000, 5000]. */
    retryDelays?: readonly number[];
    /** Pause after a 429 without Retry-After (ms). Default 5000. */
    throttleDelay?: number;
    /** Per-part checksums: each part's MD5, computed in a Web Worker ahead of its PUT, is
     * signed into its URL (contentMD5) and sent as Content-MD5, so S3 refuses bytes that
     * changed on the way (BadDigest: retried once from the file, then an UploadError with
     * `code: "BadDigest"`). Turns itself off for an upload when assetd signs no MD5
     * (ASSETD_PART_CHECKSUM=off, an older assetd). Default true. */
    checksums?: boolean;
    /** Called before each retry of a part; `code` is "BadDigest" for a corrupted part. */
    onRetry?: (event: { partNumber: number; attempt: number; status: number; code?: "BadDigest" }) => void;
    /** Where resume records go. Default: localStorage; null: no resume. */
    storage?: ResumeStorage | null;
    /** Hooks for tests and unusual environments. */
    fetch?: typeof fetch;
    xhrFactory?: () => XhrLike;
    random?: () => number;
    now?: () => number;
    onlineTarget?: EventTarget | null;
    /** Computes a part's base64 MD5 instead of the built-in Web Worker. */
    hashPart?: (part: Blob) => Promise<string>;
}

export interface UploadResult {
    assetId: string;
    key: string;
    /** Direct uploads only: the asset record assetd answered with. */
    asset?: Record<string, unknown>;
}

/** Uploads a file (or any Blob with a `name`) to assetd. */
export function upload(file: Blob & { name?: string; lastModified?: number }, options: UploadOptions): Promise<UploadResult>;

/** Gives up a paused or failed multipart upload of `file`: abort-upload, and its resume
 * record forgotten. Resolves to false when there was none. */
export function abandon(file: Blob & { name?: string; lastModified?: number }, options: UploadOptions): Promise<boolean>;

/** An error answer of assetd or S3. `status` is 0 for a network failure. */
export class UploadError extends Error {
    constructor(message: string, status?: number, details?: object);
    readonly name: "UploadError";
    /** The HTTP status; 0 when the request never got an answer. */
    status: number;
    /** The part that failed, for a part's PUT. */
    partNumber?: number;
    /** "BadDigest": S3 refused a part twice because its bytes did not match its MD5. */
    code?: "BadDigest";
}

/** Abort reason that pauses: the upload is kept in S3 and can be resumed. */
export class UploadPaused extends Error {}

export const MiB: number;
export const MAX_PARTS: number;
export const MIN_PART_SIZE: number;
export const DEFAULTS: Readonly<{
    concurrency: number;
    directThreshold: number;
    batchSize: number;
    retryDelays: readonly number[];
    throttleDelay: number;
    checksums: boolean;
}>;
export function partSizeFor(size: number): number;
export function partRange(partNumber: number, partSize: number, size: number): [number, number];
export function formatPartNumbers(numbers: number[]): string;
export function retryDelay(attempt: number, delays?: readonly number[], random?: () => number): number;
export function resumeKey(file: { name?: string; size: number; lastModified?: number }, baseUrl: string, workspaceId: number | string): string;
export class ProgressTracker {
    constructor(total: number, onProgress?: (progress: Progress) => void);
    update(partNumber: number, loaded: number, length: number): void;
    finish(): void;
}

/** MD5 (RFC 1321) over bytes, incrementally; `digest()` gives 16 bytes. */
export class MD5 {
    update(bytes: Uint8Array | ArrayBuffer): this;
    digest(): Uint8Array;
}
/** The base64 MD5 of a Blob, as a Content-MD5 header carries it. */
export function md5OfBlob(blob: Blob): Promise<string>;
export function base64(bytes: Uint8Array): string;
/** Whether a presigned URL signs content-md5 (its X-Amz-SignedHeaders). */
export function signsContentMD5(url: string): boolean;
