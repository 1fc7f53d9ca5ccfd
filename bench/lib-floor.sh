# The transport floor, shared by the benchmarks: bench/floor.c (a bare C libfcgi
# responder) behind a second nginx rendered from the same site file as the dev stack's,
# on port FLOOR_PORT. Source it after the dev stack is up; it needs STATE and ROOT.
#
#   start_floor PORT THREADS     sets floor_pid and floor_nginx
#   stop_floor                   (call it from the EXIT trap; stops the reference too)
#   start_reference PORT THREADS bench/presign-reference.c (the route's work in plain C)
#                                behind a third nginx from the same site file; sets
#                                reference_pid and reference_nginx. After presign_request.
#   presign_request              sets BIN, TOKEN, BASE, PATH_Q, UPLOAD_ID, ASSET_ID and
#                                KEY: the part URL the presign benchmarks ask for, of an
#                                upload it starts
#   presign_stack                the dev stack, presign_request and the floor on FLOOR_PORT,
#                                stopped on EXIT, both warmed with 2 s of `load`
#   load PORT SECONDS            wrk -t2 -c64 on the part URL; prints the requests made
#   presign_settings NAME        the settings the perf-based presign benchmarks share
#                                (THREADS, a state directory /tmp/assetd-NAME.*, the ports,
#                                FLOOR_PORT, STATE); they need perf
floor_pid=""; floor_nginx=""; reference_pid=""; reference_nginx=""

presign_settings() {
    export ASSETD_THREADS=${THREADS:-16}
    export ASSETD_STATE_DIR=${ASSETD_STATE_DIR:-$(mktemp -d "/tmp/assetd-$1.XXXXXX")}
    export ASSETD_HTTPS_PORT=${ASSETD_HTTPS_PORT:-28443} ASSETD_S3_PORT=${ASSETD_S3_PORT:-29000}
    export ASSETD_LOG_LEVEL=${ASSETD_LOG_LEVEL:-info}
    FLOOR_PORT=$((ASSETD_HTTPS_PORT + 1))
    STATE=$ASSETD_STATE_DIR
    command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"
}

start_floor() {
    local port=$1 threads=$2
    cc -O2 -o "$STATE/floor" "$ROOT/bench/floor.c" -lfcgi -lpthread
    "$STATE/floor" "$STATE/floor.sock" "$threads" >/dev/null 2>&1 & floor_pid=$!
    "$ROOT/scripts/lib/nginx-render" "$STATE/floor-nginx" --state "$STATE" --https-port "$port" \
        --socket "$STATE/floor.sock" --cors-any --log-prefix floor-nginx \
        --max-direct-body "$(( ${ASSETD_MAX_DIRECT_UPLOAD_BYTES:-26214400} + 1048576 ))"
    nginx -c "$STATE/floor-nginx/nginx.conf" -p "$STATE/floor-nginx" -e "$STATE/logs/floor-nginx-error.log"
    wait_for "floor nginx" 10 test -s "$STATE/floor-nginx/nginx.pid"
    floor_nginx=$(cat "$STATE/floor-nginx/nginx.pid")
    # Access logs off for both, so that neither pays for disk writes the other does not.
    sed -i "s|access_log .*;|access_log off;|" "$STATE/nginx/assetd.conf" "$STATE/floor-nginx/assetd.conf"
    nginx -s reload -c "$STATE/nginx/nginx.conf" -p "$STATE/nginx"
    nginx -s reload -c "$STATE/floor-nginx/nginx.conf" -p "$STATE/floor-nginx"
    sleep 1
}

# The route's work done the straightforward way in C (bench/presign-reference.c), with
# the stack's settings and the upload presign_request started in its in-memory table,
# its access log in STATE/logs/reference-access.log; nginx's access log off, as above.
start_reference() {
    local port=$1 threads=$2
    cc -O2 -o "$STATE/reference" "$ROOT/bench/presign-reference.c" -lfcgi -lcrypto -lpthread
    echo "$UPLOAD_ID $ASSET_ID 1 $KEY" >"$STATE/reference-uploads.txt"
    "$STATE/reference" "$STATE/reference.sock" "$threads" "$STATE/assetd.env" "$STATE/reference-uploads.txt" \
        "$STATE/logs/reference-access.log" >"$STATE/logs/reference.log" 2>&1 & reference_pid=$!
    "$ROOT/scripts/lib/nginx-render" "$STATE/reference-nginx" --state "$STATE" --https-port "$port" \
        --socket "$STATE/reference.sock" --cors-any --log-prefix reference-nginx \
        --max-direct-body "$(( ${ASSETD_MAX_DIRECT_UPLOAD_BYTES:-26214400} + 1048576 ))"
    sed -i "s|access_log .*;|access_log off;|" "$STATE/reference-nginx/assetd.conf"
    nginx -c "$STATE/reference-nginx/nginx.conf" -p "$STATE/reference-nginx" -e "$STATE/logs/reference-nginx-error.log"
    wait_for "reference nginx" 10 test -s "$STATE/reference-nginx/nginx.pid"
    reference_nginx=$(cat "$STATE/reference-nginx/nginx.pid")
    sleep 1
}

stop_floor() {
    [ -n "$floor_nginx" ] && kill -QUIT "$floor_nginx" 2>/dev/null || true
    [ -n "$reference_nginx" ] && kill -QUIT "$reference_nginx" 2>/dev/null || true
    # libfcgi handles SIGTERM itself (it only marks a shutdown), so the floor needs SIGKILL.
    [ -n "$floor_pid" ] && kill -KILL "$floor_pid" 2>/dev/null || true
    [ -n "$reference_pid" ] && kill -KILL "$reference_pid" 2>/dev/null || true
}

presign_request() {
    BIN=${ASSETD_DEV_BIN:-"$(cd "$ROOT" && swift build -c release --show-bin-path)/assetd"}
    TOKEN=$("$BIN" token --config "$STATE/assetd.env" --sub bench --workspaces 1 --ttl 7200)
    BASE="https://127.0.0.1:$ASSETD_HTTPS_PORT"
    local start upload asset
    start=$(curl -sfk -H "Authorization: Bearer $TOKEN" "$BASE/s3/start-upload?workspaceId=1&fileType=image/jpeg&fileSize=104857600")
    upload=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["uploadId"])' "$start")
    asset=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["assetId"])' "$start")
    KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$start")
    UPLOAD_ID=$upload ASSET_ID=$asset
    PATH_Q="/s3/get-upload-url?workspaceId=1&assetId=$asset&UploadId=$upload&PartNumber=7"
}

load() {
    wrk -t2 -c64 -d"$2"s -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$1$PATH_Q" | awk '/requests in/ {print $1}'
}

presign_stack() {
    trap 'stop_floor; "$ROOT/scripts/dev-stack" down >/dev/null 2>&1 || true' EXIT
    "$ROOT/scripts/dev-stack" up >/dev/null
    presign_request
    start_floor "$FLOOR_PORT" "$ASSETD_THREADS"
    load "$ASSETD_HTTPS_PORT" 2 >/dev/null
    load "$FLOOR_PORT" 2 >/dev/null
}
