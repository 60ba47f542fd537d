#!/usr/bin/env bash
# Start PostgreSQL 15 (Debian's cluster 15/main on 127.0.0.1:5432) and wait until it accepts
# connections. Idempotent: a no-op when it already does. Needs root on a bare machine.
#
#   .ci/pg-up.sh [DBNAME]
#
# With DBNAME, also makes a login role and a database of that name (password = the name),
# reachable as postgresql://DBNAME:DBNAME@127.0.0.1:5432/DBNAME; the URL is printed last.
# Environment: PG_UP_TIMEOUT (seconds to wait, default 30).
set -euo pipefail

version=15
cluster=main
port=5432
timeout_s="${PG_UP_TIMEOUT:-30}"
db="${1:-}"
die() { echo "pg-up: $*" >&2; exit 1; }

ready() { pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; }

if ! ready; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not running and starting it needs root: run 'sudo $0'."
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d "/usr/lib/postgresql/$version" ]; then
        echo "pg-up: installing postgresql-$version with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "postgresql-$version" >/dev/null
    fi
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
        pg_createcluster "$version" "$cluster" --port "$port" >/dev/null
    fi
    # "already running" is fine: another caller may have started it a moment ago.
    pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true
    deadline=$((SECONDS + timeout_s))
    until ready; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "/var/log/postgresql/postgresql-$version-$cluster.log" >&2 2>/dev/null || true
            die "PostgreSQL $version/$cluster did not accept connections on 127.0.0.1:$port within ${timeout_s}s."
        fi
        sleep 0.3
    done
    echo "pg-up: PostgreSQL $version/$cluster is up on 127.0.0.1:$port" >&2
fi

if [ -n "$db" ]; then
    [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "DBNAME must be a lowercase identifier, not '$db'."
    psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt -p "$port" "$@"; }
    if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$db'")" != 1 ]; then
        psql_admin -c "CREATE ROLE $db LOGIN PASSWORD '$db'"
    fi
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
        psql_admin -c "CREATE DATABASE $db OWNER $db"
    fi
    echo "postgresql://$db:$db@127.0.0.1:$port/$db"
fi
