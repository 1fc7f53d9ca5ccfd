# The transport floor, shared by the benchmarks: bench/floor.c (a bare C libfcgi
# responder) behind a second nginx rendered from the same site file as the dev stack's,
# on port FLOOR_PORT. Source it after the dev stack is up; it needs STATE and ROOT.
#
#   start_floor PORT THREADS     sets floor_pid and floor_nginx
#   stop_floor                   (call it from the EXIT trap)
floor_pid=""; floor_nginx=""

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

stop_floor() {
    [ -n "$floor_nginx" ] && kill -QUIT "$floor_nginx" 2>/dev/null || true
    # libfcgi handles SIGTERM itself (it only marks a shutdown), so the floor needs SIGKILL.
    [ -n "$floor_pid" ] && kill -KILL "$floor_pid" 2>/dev/null || true
}
