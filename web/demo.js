// The demo upload page: picks or drops files, uploads each with assetd-upload.js (a
// progress bar, pause, cancel, retry), and lists the workspace's assets.
//
// It talks to its own origin only: assetd's routes are on the server that serves it. The
// bearer token never travels in an address: the user pastes it into the form, or a link
// carries it in its fragment (`/#token=...&workspaceId=7`, which browsers send to no
// server). The fragment leaves the address bar at once, and its token is used only once
// the user has confirmed it: whoever writes a link chooses whose account it signs into.
// A token, workspace or other server in the query string is ignored, and the page says so.
// The token is kept in sessionStorage only (this tab, until it closes).
import { UploadPaused, abandon, upload } from "./assetd-upload.js";

const $ = (selector, root = document) => root.querySelector(selector);
const TOKEN = "assetd.token";
const WORKSPACE = "assetd.workspaceId";
const WORKSPACE_ID = /^[1-9][0-9]*$/;

// An older page kept another server's address here (its `api=` parameter).
sessionStorage.removeItem("assetd.api");
const session = {
    token: sessionStorage.getItem(TOKEN) || "",
    workspaceId: sessionStorage.getItem(WORKSPACE) || "",
};

// What the address carries; then the address bar keeps none of it.
const query = new URLSearchParams(location.search);
const offer = { token: "", workspaceId: "" };
const IGNORED = {
    token: "The link put a token in its query string (?token=), where servers and their logs see it: this page ignored it. Paste the token below, or give it after a # (#token=…).",
    api: "The link named another server (?api=): this page ignored it, and talks only to the server it came from.",
    workspaceId: "The link named a workspace in its query string (?workspaceId=): this page ignored it. The workspace is chosen when signing in.",
};
const ignored = Object.keys(IGNORED).filter((name) => query.has(name));
for (const name of ignored) query.delete(name);

/** Takes a #token=...&workspaceId=... fragment as an offer, and clears the address bar. */
function readAddress() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.get("token")) {
        offer.token = fragment.get("token");
        offer.workspaceId = fragment.get("workspaceId") || "";
    }
    if (ignored.length || location.hash) {
        const rest = query.toString();
        history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
    }
}
readAddress();

/** A JWT's claims, for showing whom a token is for. Not verified: assetd does that. */
function claims(token) {
    try {
        const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
        const value = JSON.parse(new TextDecoder().decode(bytes));
        return value && typeof value === "object" ? value : null;
    } catch {
        return null;
    }
}

function describe(token) {
    const c = claims(token);
    if (!c) return "that this page cannot read";
    const parts = [];
    if (typeof c.sub === "string") parts.push(`for “${c.sub}”`);
    if (Array.isArray(c.workspaces)) parts.push(`${c.workspaces.length === 1 ? "workspace" : "workspaces"} ${c.workspaces.join(", ")}`);
    if (typeof c.exp === "number") parts.push(`valid until ${new Date(c.exp * 1000).toLocaleString()}`);
    return parts.join(", ");
}

function signIn(token, workspaceId) {
    session.token = token;
    session.workspaceId = workspaceId;
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(WORKSPACE, workspaceId);
}

function signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(WORKSPACE);
    location.reload();
}

function formatBytes(n) {
    if (n == null) return "size unknown";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

async function api(path, query = {}) {
    const url = new URL(path, location.origin);
    url.searchParams.set("workspaceId", session.workspaceId);
    for (const [k, v] of Object.entries(query)) if (v != null) url.searchParams.set(k, v);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
}

// ---- uploads ----------------------------------------------------------------------

function addUpload(file) {
    const item = $("#upload-template").content.firstElementChild.cloneNode(true);
    const bar = $("progress", item);
    const state = $(".state", item);
    const pause = $(".pause", item);
    const cancel = $(".cancel", item);
    const retry = $(".retry", item);
    $(".name", item).textContent = file.name;
    $(".size", item).textContent = formatBytes(file.size);
    bar.max = file.size || 1;
    bar.setAttribute("aria-label", `Progress of ${file.name}`);
    pause.setAttribute("aria-label", `Pause ${file.name}`);
    cancel.setAttribute("aria-label", `Cancel ${file.name}`);
    retry.setAttribute("aria-label", `Retry ${file.name}`);
    $("#uploads").prepend(item);

    let controller = null;
    const show = (text, mode) => {
        state.textContent = text;
        item.classList.toggle("done", mode === "done");
        item.classList.toggle("failed", mode === "failed");
        pause.hidden = mode !== "running" && mode !== "paused";
        pause.textContent = mode === "paused" ? "Resume" : "Pause";
        pause.setAttribute("aria-label", `${pause.textContent} ${file.name}`);
        cancel.hidden = mode !== "running" && mode !== "paused";
        retry.hidden = mode !== "failed" && mode !== "cancelled";
    };

    // The session it started in, to the end: signing in anew must not send an upload's
    // later requests with another workspace's token.
    const { token, workspaceId } = session;
    const options = () => ({ baseUrl: location.origin, workspaceId, getToken: () => token });

    async function run() {
        controller = new AbortController();
        show("Starting…", "running");
        try {
            const result = await upload(file, {
                ...options(),
                signal: controller.signal,
                // Read when the upload starts (or resumes): the box applies to the next ones.
                checksums: document.querySelector("#checksums").checked,
                onProgress: ({ loaded, total }) => {
                    bar.value = loaded;
                    bar.max = total || 1;
                    const percent = total ? Math.floor((loaded / total) * 100) : 100;
                    state.textContent = `${formatBytes(loaded)} of ${formatBytes(total)} (${percent} %)`;
                },
            });
            bar.value = bar.max;
            item.dataset.assetId = result.assetId;
            show(`Done: asset ${result.assetId}`, "done");
            refreshAssets();
        } catch (error) {
            if (error.name === "AbortError") {
                if (error.paused) show("Paused", "paused");
                else show("Cancelled", "cancelled");
            } else {
                show(`Failed: ${error.message}${error.status ? ` (HTTP ${error.status})` : ""}`, "failed");
            }
        } finally {
            controller = null;
        }
    }

    pause.addEventListener("click", () => {
        if (controller) controller.abort(new UploadPaused());
        else run(); // Resume: the same file again goes on from list-parts
    });
    cancel.addEventListener("click", async () => {
        if (controller) return controller.abort();
        // Paused: nothing in flight, but S3 keeps the parts until abort-upload.
        try {
            await abandon(file, options());
            show("Cancelled", "cancelled");
        } catch (error) {
            show(`Cancel failed: ${error.message}`, "paused");
        }
    });
    retry.addEventListener("click", run);
    run();
}

function pick(files) {
    for (const file of files) addUpload(file);
}

// ---- the asset list -----------------------------------------------------------------

let nextCursor = null;
let pendingTimer = null;
let pendingChecks = 0;

// What the decoder learned (GET /api/assets: media), as one line: "1000 × 1600 · 2.5 s ·
// 3 pages · Canon EOS R · taken 2024-05-06 07:08"; empty when nothing is known yet.
function describeMedia(media) {
    if (!media || typeof media !== "object") return "";
    const parts = [];
    if (Number.isFinite(media.width) && Number.isFinite(media.height)) parts.push(`${media.width} × ${media.height}`);
    if (Number.isFinite(media.durationSeconds)) parts.push(`${media.durationSeconds.toFixed(1)} s`);
    if (Number.isFinite(media.pages)) parts.push(media.pages === 1 ? "1 page" : `${media.pages} pages`);
    const camera = [media.cameraMake, media.cameraModel].filter((part) => typeof part === "string" && part).join(" ");
    if (camera) parts.push(camera);
    if (typeof media.takenAt === "string" && media.takenAt) parts.push(`taken ${media.takenAt.replace("T", " ").slice(0, 16)}`);
    if (media.gps && Number.isFinite(media.gps.latitude) && Number.isFinite(media.gps.longitude)) {
        parts.push(`${media.gps.latitude.toFixed(4)}, ${media.gps.longitude.toFixed(4)}`);
    }
    return parts.join(" · ");
}

function renderAsset(asset) {
    const item = $("#asset-template").content.firstElementChild.cloneNode(true);
    item.dataset.listedAssetId = asset.id;
    const name = asset.fileName || asset.key.split("/").pop();
    $(".name", item).textContent = name;
    const details = $(".details", item);
    const status = document.createElement("span");
    status.className = `status-${asset.status}`;
    status.textContent = asset.status;
    details.append(status, ` · ${formatBytes(asset.size)} · ${asset.fileType}`);
    if (asset.title) {
        const title = $(".title", item);
        title.textContent = asset.title;
        title.hidden = false;
    }
    if (Array.isArray(asset.tags) && asset.tags.length) {
        const tags = $(".tags", item);
        for (const tag of asset.tags) {
            const chip = document.createElement("span");
            chip.className = "tag";
            chip.textContent = tag;
            tags.append(chip);
        }
        tags.hidden = false;
    }
    const facts = describeMedia(asset.media);
    if (facts) {
        const media = $(".media", item);
        media.textContent = facts;
        media.hidden = false;
    }
    const thumb = $(".thumb", item);
    if (asset.thumbnail && asset.thumbnail.url) {
        const img = document.createElement("img");
        img.src = asset.thumbnail.url;
        img.alt = `Thumbnail of ${name}`;
        img.loading = "lazy";
        img.referrerPolicy = "no-referrer";
        thumb.append(img);
    } else {
        const placeholder = document.createElement("span");
        placeholder.className = "placeholder";
        placeholder.textContent = asset.thumbnail && asset.thumbnail.status === "pending" ? "Thumbnail pending" : `No thumbnail (${asset.fileType})`;
        thumb.append(placeholder);
    }
    const download = $(".download", item);
    download.setAttribute("aria-label", `Download ${name}`);
    if (asset.status !== "ready") download.disabled = true;
    download.addEventListener("click", async () => {
        try {
            const { url } = await api("/s3/download-url", { assetId: asset.id, disposition: "attachment", expiresIn: 300 });
            location.assign(url);
        } catch (error) {
            $("#assets-status").textContent = `Download failed: ${error.message}`;
        }
    });
    return item;
}

// The search box and the type filter: what the list asks for.
function listFilter() {
    const q = $("#search-input").value.trim();
    const type = $("#type-filter").value;
    return { q: q || null, type: type || null };
}

// Answers can arrive out of order while someone types: only the last request's counts.
let listRequest = 0;

async function loadAssets(cursor) {
    const status = $("#assets-status");
    const request = ++listRequest;
    const filter = listFilter();
    try {
        const page = await api("/api/assets", { limit: 24, cursor, ...filter });
        if (request !== listRequest) return;
        const list = $("#assets");
        if (!cursor) list.replaceChildren();
        for (const asset of page.assets) list.append(renderAsset(asset));
        nextCursor = page.next;
        $("#more").hidden = !nextCursor;
        status.textContent = list.children.length ? "" : filter.q || filter.type ? "No asset matches." : "No assets yet.";
        // Thumbnails are made after the upload: look again while some are pending, for a
        // minute at most after the last upload.
        clearTimeout(pendingTimer);
        if (!cursor && page.assets.some((a) => a.thumbnail && a.thumbnail.status === "pending") && pendingChecks < 30) {
            pendingChecks++;
            pendingTimer = setTimeout(() => loadAssets(null), 2000);
        }
    } catch (error) {
        if (request !== listRequest) return;
        status.textContent = `Could not list the assets: ${error.message}`;
    }
}

function refreshAssets() {
    pendingChecks = 0;
    return loadAssets(null);
}

// ---- start ----------------------------------------------------------------------------

function showNotices() {
    const notice = $("#notice");
    notice.replaceChildren(...ignored.map((name) => {
        const p = document.createElement("p");
        p.textContent = IGNORED[name];
        return p;
    }));
    notice.hidden = ignored.length === 0;
}

/** The form: empty, or holding a link's token until the user confirms it. */
function showSignIn() {
    $("#sign-in").hidden = false;
    $("#picker").hidden = true;
    $("#assets-section").hidden = true;
    $("#session").hidden = true;
    const offered = Boolean(offer.token);
    const c = offered ? claims(offer.token) : null;
    const only = c && Array.isArray(c.workspaces) && c.workspaces.length === 1 ? String(c.workspaces[0]) : "";
    $("#token-input").value = offer.token;
    $("#workspace-input").value = offered ? offer.workspaceId || only : session.workspaceId;
    $("#offer").hidden = !offered;
    $("#offer-who").textContent = offered ? describe(offer.token) : "";
    $("#use-token").textContent = offered ? "Use this token" : "Sign in";
    const keep = $("#keep-session");
    keep.hidden = !(offered && signedIn());
    keep.textContent = `Keep the current session (workspace ${session.workspaceId})`;
    (offered ? $("#use-token") : $("#token-input")).focus();
}

function signedIn() {
    return Boolean(session.token) && WORKSPACE_ID.test(session.workspaceId);
}

function listenSignIn() {
    $("#sign-in-form").addEventListener("submit", (event) => {
        event.preventDefault();
        const token = $("#token-input").value.trim();
        const workspaceId = $("#workspace-input").value.trim();
        if (!token || !WORKSPACE_ID.test(workspaceId)) return;
        signIn(token, workspaceId);
        offer.token = "";
        $("#token-input").value = "";
        showApp();
    });
    $("#keep-session").addEventListener("click", () => {
        offer.token = "";
        $("#token-input").value = "";
        showApp();
    });
    // A #token= link opened in this tab while the page is already here.
    window.addEventListener("hashchange", () => {
        readAddress();
        if (offer.token) showSignIn();
    });
}

let appStarted = false;

function showApp() {
    $("#sign-in").hidden = true;
    $("#picker").hidden = false;
    $("#assets-section").hidden = false;
    $("#session").hidden = false;
    $("#workspace-label").textContent = session.workspaceId;
    const c = claims(session.token);
    $("#who").textContent = c && typeof c.sub === "string" ? ` · ${c.sub}` : "";
    if (appStarted) return refreshAssets(); // another token or workspace, perhaps
    appStarted = true;
    $("#sign-out").addEventListener("click", signOut);
    $("#file-input").addEventListener("change", (event) => {
        pick(event.target.files);
        event.target.value = ""; // the same file can be picked again
    });
    const zone = $("#drop-zone");
    zone.addEventListener("dragover", (event) => {
        event.preventDefault();
        zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
        event.preventDefault();
        zone.classList.remove("over");
        pick(event.dataTransfer.files);
    });
    $("#refresh").addEventListener("click", refreshAssets);
    $("#more").addEventListener("click", () => loadAssets(nextCursor));
    let typing = null;
    $("#search-input").addEventListener("input", () => {
        clearTimeout(typing);
        typing = setTimeout(refreshAssets, 250);
    });
    $("#type-filter").addEventListener("change", refreshAssets);
    $("#asset-filter").addEventListener("submit", (event) => {
        event.preventDefault();
        clearTimeout(typing);
        refreshAssets();
    });
    refreshAssets();
}

function start() {
    showNotices();
    listenSignIn();
    if (offer.token || !signedIn()) showSignIn();
    else showApp();
}

start();
