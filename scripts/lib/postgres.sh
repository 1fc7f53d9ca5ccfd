# PostgreSQL 15 (Debian's postgresql-15) on loopback, for dev-stack (ASSETD_DEV_DB=postgres)
# and the tests. Source it after common.sh; do not run it.
# shellcheck shell=bash

PG_BIN=${ASSETD_PG_BIN:-/usr/lib/postgresql/15/bin}

# The server refuses to run as root: as root, it runs as the `postgres` user the package
# made, in a data directory that user owns.
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# postgres_up DIR PORT PIDS: starts PostgreSQL with its data in DIR (initdb on first use)
# on 127.0.0.1:PORT, records its pid in PIDS/postgres.pid, and prints the URL of its
# `assetd` database (role assetd, a random password kept in DIR/password).
postgres_up() {
    local dir=$1 port=$2 pids=$3
    local data=$dir/data password_file=$dir/password
    [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL 15 is not installed ($PG_BIN/pg_ctl): apt-get install postgresql-15"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        # The directories above DIR must let the postgres user through (o+x: no listing):
        # the state directory, and a private temporary directory it may sit in.
        local up
        up=$(dirname "$dir")
        while [ "$up" != / ] && ! runuser -u postgres -- test -x "$up"; do
            say "letting the postgres user through $up (o+x)"
            chmod o+x "$up"
            up=$(dirname "$up")
        done
        chown postgres: "$dir"
        chmod 700 "$dir"
        runuser -u postgres -- test -w "$dir" || die "the postgres user cannot reach $dir (a parent directory is closed to it)"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "initdb: PostgreSQL 15 in $data"
        pg_as "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { tail -20 "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    # Only loopback; the unix socket in DIR, for this script's own psql. Commits are not
    # flushed one by one (as SQLite's synchronous=NORMAL in WAL mode): a development server.
    # In a file of its own, so that a plain `pg_ctl start` (postgres_ctl) finds them again.
    grep -q "^include_if_exists = 'assetd.conf'" "$data/postgresql.conf" \
        || echo "include_if_exists = 'assetd.conf'" | pg_as tee -a "$data/postgresql.conf" >/dev/null
    pg_as tee "$data/assetd.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
synchronous_commit = off
max_connections = 200
CONF
    say "starting PostgreSQL on 127.0.0.1:$port"
    postgres_ctl "$dir" start || { tail -20 "$dir/postgres.log" >&2; die "PostgreSQL did not start (log: $dir/postgres.log)"; }
    head -n 1 "$data/postmaster.pid" >"$pids/postgres.pid"
    local password
    if [ -f "$password_file" ]; then password=$(cat "$password_file"); else password=$(random_secret); fi
    (umask 077; printf '%s' "$password" >"$password_file")
    # The role owns its database and nothing else (docs/OPERATIONS.md, "Several hosts": least privilege).
    pg_as "$PG_BIN/psql" -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "cannot create the assetd role"
SELECT 'CREATE ROLE assetd LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'assetd') \gexec
ALTER ROLE assetd PASSWORD '$password';
SELECT 'CREATE DATABASE assetd OWNER assetd' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'assetd') \gexec
SQL
    printf 'postgresql://assetd:%s@127.0.0.1:%s/assetd\n' "$password" "$port"
}

# postgres_c_database DIR PORT: a database `assetd_c` beside postgres_up's, owned by the same
# role, with LC_CTYPE and LC_COLLATE `C` (as deployments that pick C for speed have), for the
# store tests of what depends on the ctype (pg_trgm's word characters); prints its URL.
postgres_c_database() {
    local dir=$1 port=$2
    pg_as "$PG_BIN/psql" -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "cannot create the assetd_c database"
SELECT 'CREATE DATABASE assetd_c OWNER assetd LC_CTYPE ''C'' LC_COLLATE ''C'' TEMPLATE template0'
    WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'assetd_c') \gexec
SQL
    printf 'postgresql://assetd:%s@127.0.0.1:%s/assetd_c\n' "$(cat "$dir/password")" "$port"
}

# postgres_down DIR PIDS: stops the server postgres_up started in DIR (fast shutdown).
# The server is the one running on DIR/data (its postmaster.pid), which postgres_up made:
# after a postgres_ctl restart its pid differs from the one recorded at `up`.
postgres_down() {
    local dir=$1 pids=$2
    [ -f "$pids/postgres.pid" ] || [ -f "$dir/data/postmaster.pid" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ] && kill -0 "$(head -n 1 "$dir/data/postmaster.pid")" 2>/dev/null; then
        say "stopping PostgreSQL (pid $(head -n 1 "$dir/data/postmaster.pid"))"
        pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null || warn "PostgreSQL did not stop cleanly"
    fi
    rm -f "$pids/postgres.pid"
}

# postgres_ctl DIR start|stop: the server of postgres_up, started or stopped (fast) as it
# is, for a test that takes the database away under load.
postgres_ctl() {
    local dir=$1 action=$2
    case "$action" in
        start) pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start >/dev/null
               # Keep dev-stack's record of it current (STATE/pids beside STATE/postgres).
               if [ -d "$dir/../pids" ]; then head -n 1 "$dir/data/postmaster.pid" >"$dir/../pids/postgres.pid"; fi ;;
        stop) pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null ;;
        *) die "postgres_ctl: start or stop, not $action" ;;
    esac
}
