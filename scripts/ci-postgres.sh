#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the control-plane store tests.
#
#   eval "$(bash scripts/ci-postgres.sh)"     # exports SUAN_TEST_POSTGRES_URL
#
# Everything but the final `export` line goes to stderr.
# The server is started with fd 3 (this script's real stdout) closed, so that a caller reading
# stdout through `$(...)` is not kept waiting by the server holding it open.
# Installs Debian's postgresql when its binaries are missing, creates a cluster in a temporary
# directory owned by the postgres user, starts it on 127.0.0.1:${SUAN_PG_PORT:-55432} and
# creates the database `suan_test`. Needs root (apt-get, su). Safe to run twice.
set -euo pipefail
exec 3>&1 1>&2

PG_PORT="${SUAN_PG_PORT:-55432}"
PG_DATA="${SUAN_PG_DATA:-/tmp/suan-ci-postgres}"

pg_bin_dir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    echo "$dir"
}

if [ -z "$(pg_bin_dir)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(pg_bin_dir)"
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres

if ! su -s /bin/sh postgres -c "$PG_BIN/pg_ctl -D $PG_DATA status" >/dev/null 2>&1; then
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    chown postgres "$PG_DATA"
    su -s /bin/sh postgres -c "$PG_BIN/initdb -D $PG_DATA -A trust -U postgres" >/dev/null
    su -s /bin/sh postgres -c "$PG_BIN/pg_ctl -D $PG_DATA -l $PG_DATA/server.log -w \
        -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp' start" >/dev/null 3>&-
fi
su -s /bin/sh postgres -c "$PG_BIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres -tAc \
    \"SELECT 1 FROM pg_database WHERE datname='suan_test'\"" | grep -q 1 \
    || su -s /bin/sh postgres -c "$PG_BIN/createdb -h 127.0.0.1 -p $PG_PORT -U postgres suan_test"

URL="postgresql://postgres@127.0.0.1:$PG_PORT/suan_test"
echo "PostgreSQL ready at $URL" >&2
echo "export SUAN_TEST_POSTGRES_URL=$URL" >&3
