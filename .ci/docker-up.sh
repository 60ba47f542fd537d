#!/usr/bin/env bash
# Make a Docker engine reachable on this machine, idempotently.
#
#   .ci/docker-up.sh            # as root; a no-op when `docker info` already works
#
# On a fresh Debian machine it installs docker.io (and debootstrap, which
# .ci/base-os-image.sh needs) with apt-get, starts dockerd in the background
# (log: /var/log/dockerd.log) and waits until the daemon answers.
# Environment: DOCKER_UP_TIMEOUT (seconds to wait, default 60).
set -euo pipefail

timeout_s="${DOCKER_UP_TIMEOUT:-60}"
log=/var/log/dockerd.log

if docker info >/dev/null 2>&1; then
    exit 0
fi

die() { echo "docker-up: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    die "Docker engine is not running and starting it needs root: run 'sudo .ci/docker-up.sh' (or start dockerd yourself)."
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "docker-up: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Without systemd the package's service start fails harmlessly; we start dockerd below.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io."
# docker.io brings its own CLI; an existing newer CLI earlier on PATH talks to it through API negotiation.
command -v docker >/dev/null 2>&1 || die "no docker CLI found on PATH."

pidfile=/var/run/docker.pid
daemon_pid=""
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    daemon_pid="$(cat "$pidfile")"
    echo "docker-up: dockerd (pid $daemon_pid) is running but not answering yet; waiting" >&2
else
    # A daemon that died uncleanly leaves a pid file that stops the next one from starting.
    rm -f "$pidfile"
    echo "docker-up: starting dockerd (log: $log)" >&2
    # setsid: the daemon must outlive the shell (and process group) that started it;
    # --wait keeps $! alive exactly as long as dockerd, whether or not setsid had to fork.
    setsid --wait dockerd >>"$log" 2>&1 </dev/null &
    daemon_pid=$!
fi

deadline=$((SECONDS + timeout_s))
until docker info >/dev/null 2>&1; do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        tail -n 20 "$log" >&2 || true
        die "dockerd exited while starting; see $log."
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 20 "$log" >&2 || true
        die "dockerd did not answer within ${timeout_s}s; see $log."
    fi
    sleep 0.5
done

# The CLI on PATH may be newer than the daemon; make sure they agree on an API version.
if ! server="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>&1)"; then
    die "the docker CLI ($(command -v docker)) cannot talk to the daemon: $server"
fi
echo "docker-up: Docker engine $server is up" >&2
