// The demo upload page: picks or drops files, uploads each with assetd-upload.js (a
// progress bar, pause, cancel, retry), and lists the workspace's assets. It takes `token`
// and `workspaceId` from its query string (`/?token=...&workspaceId=7`), keeps them in
// sessionStorage (so a reload still works) and removes the token from the address bar.
// `api=` names assetd's origin when the page is served from elsewhere.
import { UploadPaused, abandon, upload } from "./assetd-upload.js";

const $ = (selector, root = document) => root.querySelector(selector);
const params = new URLSearchParams(location.search);
const session = {
    token: params.get("token") || sessionStorage.getItem("assetd.token") || "",
    workspaceId: params.get("workspaceId") || sessionStorage.getItem("assetd.workspaceId") || "",
    api: (params.get("api") || sessionStorage.getItem("assetd.api") || location.origin).replace(/\/+$/, ""),
};

function remember() {
    sessionStorage.setItem("assetd.token", session.token);
    sessionStorage.setItem("assetd.workspaceId", session.workspaceId);
    sessionStorage.setItem("assetd.api", session.api);
    if (params.has("token")) {
        params.delete("token");
        params.set("workspaceId", session.workspaceId);
        history.replaceState(null, "", `${location.pathname}?${params}`);
    }
}

function formatBytes(n) {
    if (n == null) return "size unknown";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

async function api(path, query = {}) {
    const url = new URL(session.api + path);
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

    const options = () => ({ baseUrl: session.api, workspaceId: session.workspaceId, getToken: () => session.token });

    async function run() {
        controller = new AbortController();
        show("Starting…", "running");
        try {
            const result = await upload(file, {
                ...options(),
                signal: controller.signal,
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

async function loadAssets(cursor) {
    const status = $("#assets-status");
    try {
        const page = await api("/api/assets", { limit: 24, cursor });
        const list = $("#assets");
        if (!cursor) list.replaceChildren();
        for (const asset of page.assets) list.append(renderAsset(asset));
        nextCursor = page.next;
        $("#more").hidden = !nextCursor;
        status.textContent = list.children.length ? "" : "No assets yet.";
        // Thumbnails are made after the upload: look again while some are pending, for a
        // minute at most after the last upload.
        clearTimeout(pendingTimer);
        if (!cursor && page.assets.some((a) => a.thumbnail && a.thumbnail.status === "pending") && pendingChecks < 30) {
            pendingChecks++;
            pendingTimer = setTimeout(() => loadAssets(null), 2000);
        }
    } catch (error) {
        status.textContent = `Could not list the assets: ${error.message}`;
    }
}

function refreshAssets() {
    pendingChecks = 0;
    return loadAssets(null);
}

// ---- start ----------------------------------------------------------------------------

function start() {
    if (!session.token || !/^[1-9][0-9]*$/.test(session.workspaceId)) {
        $("#sign-in").hidden = false;
        $("#picker").hidden = true;
        $("#assets-section").hidden = true;
        $("#workspace-input").value = session.workspaceId;
        $("#sign-in-form").addEventListener("submit", (event) => {
            event.preventDefault();
            session.token = $("#token-input").value.trim();
            session.workspaceId = $("#workspace-input").value.trim();
            remember();
            location.reload();
        });
        return;
    }
    remember();
    $("#workspace-label").textContent = session.workspaceId;
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
    refreshAssets();
}

start();
