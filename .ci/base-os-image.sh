#!/usr/bin/env bash
# Build a local Debian bookworm base image with Python 3.11, for machines that
# cannot pull python:3.11-slim-bookworm from a registry. Idempotent.
#
#   .ci/base-os-image.sh [TAG]          # default TAG: mfc-os:bookworm; needs root and a running engine
#
# The image holds what Dockerfile.base needs and no more: python3 (3.11),
# python3-venv (venv + the ensurepip wheels, so `pip install --no-index` of
# local wheels works without python3-pip) and ca-certificates.
# Environment: MFC_DEBIAN_MIRROR overrides the mirror (default: the first one
# apt on this machine uses for bookworm, else http://deb.debian.org/debian).
set -euo pipefail

tag="${1:-mfc-os:bookworm}"
suite=bookworm
die() { echo "base-os-image: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker CLI; run .ci/docker-up.sh first."
docker info >/dev/null 2>&1 || die "Docker engine is not reachable; run .ci/docker-up.sh (or 'make docker-up') first."
if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root: run 'sudo $0 $tag'."

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "base-os-image: installing debootstrap with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# Reuse the mirror apt already reaches here: the network may allow only that one.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas: take the URIs of the stanza whose Suites name bookworm itself.
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uris != "" && ok) { print uris; exit } uris = ""; ok = 0; next }
            tolower($1) == "uris:" { uris = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (uris != "" && ok) print uris }
        ' "$f" | head -n 1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i + 1) == suite) { print $i; exit } }' "$f"
    done
}
mirror="${MFC_DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /var/tmp/mfc-os.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "base-os-image: debootstrap $suite from $mirror into $rootfs" >&2
start=$SECONDS
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    die "debootstrap failed (full log: $rootfs.log)."
fi
rm -f "$rootfs.log"
echo "base-os-image: debootstrap took $((SECONDS - start))s" >&2

# Downloaded .debs and package lists only make the image bigger.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $suite + python3 python3-venv ca-certificates" \
    - "$tag" >/dev/null
echo "base-os-image: imported $tag ($(docker image inspect --format '{{.Size}}' "$tag") bytes)" >&2
