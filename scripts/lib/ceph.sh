# A throwaway single-node Ceph RADOS Gateway for the dev stack and the tests
# (ASSETD_DEV_S3=ceph): one mon, one OSD on memstore, radosgw's beast frontend on
# 127.0.0.1:$S3_PORT, all on loopback, all under $STATE/ceph. Source it after common.sh.
# shellcheck shell=bash

CEPH_PACKAGES=(ceph-mon ceph-osd radosgw)

ceph_install() {
    local missing=()
    for pkg in "${CEPH_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    say "installing Ceph: ${missing[*]} (no recommends)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ceph_up STATE PIDS S3_PORT ACCESS_KEY SECRET_KEY
ceph_up() {
    local state=$1 pids=$2 port=$3 access=$4 secret=$5
    local dir=$state/ceph
    local mon_port=${ASSETD_CEPH_MON_PORT:-3300}
    local port_min=${ASSETD_CEPH_PORT_MIN:-6800} port_max=${ASSETD_CEPH_PORT_MAX:-6830}
    ceph_install
    rm -rf "$dir"
    mkdir -p "$dir"/{mon,osd,run,log,rgw}
    local fsid
    fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind port min = $port_min
ms bind port max = $port_max
# No cephx on a loopback test cluster; without crc the clients loop on
# "get_initial_auth_request returned -13".
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
log file = $dir/log/\$cluster-\$name.log
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
CONF
    local conf=$dir/ceph.conf
    say "starting Ceph: mon on 127.0.0.1:$mon_port, daemons on $port_min-$port_max"
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >/dev/null 2>&1
    ceph-mon -c "$conf" -i a -f >"$dir/log/mon.out" 2>&1 &
    echo $! >"$pids/ceph-mon.pid"
    wait_for "ceph-mon" 30 timeout 5 ceph -c "$conf" mon stat || { tail -20 "$dir/log/"* >&2; return 1; }

    local osd_uuid id
    osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    id=$(ceph -c "$conf" osd new "$osd_uuid")
    mkdir -p "$dir/osd/ceph-$id"
    ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
    ceph-osd -c "$conf" -i "$id" -f >"$dir/log/osd.out" 2>&1 &
    echo $! >"$pids/ceph-osd.pid"
    wait_for "ceph-osd" 60 sh -c "ceph -c '$conf' osd stat 2>/dev/null | grep -q '1 up'" || { tail -20 "$dir/log/"* >&2; return 1; }

    radosgw -c "$conf" -n client.rgw.a -f >"$dir/log/rgw.out" 2>&1 &
    echo $! >"$pids/ceph-rgw.pid"
    wait_for "radosgw" 90 curl -s -o /dev/null "http://127.0.0.1:$port/" || { tail -30 "$dir/log/"* >&2; return 1; }
    radosgw-admin -c "$conf" user create --uid=assetd --display-name=assetd \
        --access-key="$access" --secret-key="$secret" >/dev/null 2>&1 \
        || radosgw-admin -c "$conf" user info --uid=assetd >/dev/null
    say "Ceph RGW answers on http://127.0.0.1:$port"
}

ceph_down() {
    local state=$1 pids=$2
    for name in ceph-rgw ceph-osd ceph-mon; do
        [ -f "$pids/$name.pid" ] || continue
        local pid
        pid=$(cat "$pids/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + 15))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pids/$name.pid"
    done
    rm -rf "$state/ceph"
}
