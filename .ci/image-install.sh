#!/bin/sh
# Install steps shared by Dockerfile.base and Dockerfile.gpu; runs inside the image build.
#
#   image-install.sh system   Python >= 3.10 with venv (apt-get only if the base lacks it),
#                             extra CA certificates from /tmp/mfc-ca, user mfc (uid 1000).
#   image-install.sh deps     venv /opt/mfc/venv with the wheels in /tmp/mfc-wheels/deps.
#   image-install.sh mfc      the mfc wheel in /tmp/mfc-wheels/mfc, then `pip check`.
#
# Environment (from the Dockerfiles): MFC_PYTHON_VERSION (build arg: the wheels' Python,
# e.g. 3.11; needed by `system`), VIRTUAL_ENV (/opt/mfc/venv). Not PYTHON_VERSION: the
# python:* images set that ENV to a full version, and ENV beats a build arg. Nothing here uses the network except the apt-get
# fallback of `system`, which only runs on bases without a usable Python (CUDA images).
set -eu

venv="${VIRTUAL_ENV:-/opt/mfc/venv}"
want="${MFC_PYTHON_VERSION:-}"
die() { echo "image-install: $*" >&2; exit 1; }

# The interpreter the venv is made from: python3.X first (CUDA images may hold several).
find_python() {
    for candidate in "python$want" python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import ensurepip, venv' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "the base image has no Python $want with venv and no apt-get to install it."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    rm -rf /var/lib/apt/lists/*
}

install_extra_ca() {
    found=0
    for cert in /tmp/mfc-ca/*.crt /tmp/mfc-ca/*.pem; do
        [ -f "$cert" ] || continue
        found=$((found + 1))
        mkdir -p /usr/local/share/ca-certificates
        cp "$cert" "/usr/local/share/ca-certificates/mfc-extra-$found.crt"
    done
    rm -rf /tmp/mfc-ca
    [ "$found" -gt 0 ] || return 0
    command -v update-ca-certificates >/dev/null 2>&1 || die "an extra CA bundle was given but the base image lacks ca-certificates."
    update-ca-certificates >/dev/null
    echo "image-install: added $found extra CA file(s) to the system trust store" >&2
}

add_user() {
    # Some bases (Ubuntu 24.04) already own uid 1000; take that account over rather than fail.
    existing="$(getent passwd 1000 | cut -d: -f1 || true)"
    if [ -n "$existing" ] && [ "$existing" != mfc ]; then
        usermod --login mfc --home /home/mfc --move-home "$existing"
        groupmod --new-name mfc "$(id -gn mfc)" 2>/dev/null || true
    elif [ -z "$existing" ]; then
        getent group 1000 >/dev/null || groupadd --gid 1000 mfc
        useradd --uid 1000 --gid 1000 --create-home --home-dir /home/mfc --shell /bin/sh mfc
    fi
    mkdir -p /home/mfc/work
    chown -R 1000:1000 /home/mfc
}

system() {
    [ -n "$want" ] || die "MFC_PYTHON_VERSION must be set (a build arg of the Dockerfiles)."
    # ca-certificates: the base may have Python but no trust store (pip and boto3 need one at run time).
    if ! python="$(find_python)"; then
        apt_install ca-certificates "python$want" "python$want-venv"
        python="$(find_python)" || die "no Python $want with venv after apt-get install."
    elif [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then
        apt_install ca-certificates
    fi
    got="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [ "$got" = "$want" ] || die "the base image's $python is Python $got but the wheels are for $want: pass --build-arg MFC_PYTHON_VERSION=$got (make: IMAGE_PYTHON_VERSION= or GPU_PYTHON_VERSION=) or use another base image."
    mkdir -p "$(dirname "$venv")"
    # Where the venv will be made, by the next stage; recorded so `deps` uses the same interpreter.
    echo "$python" >/usr/local/lib/mfc/python
    install_extra_ca
    add_user
}

deps() {
    python="$(cat /usr/local/lib/mfc/python)"
    "$python" -m venv "$venv"
    set -- /tmp/mfc-wheels/deps/*.whl
    [ -f "$1" ] || die "no wheels in /tmp/mfc-wheels/deps: run 'make wheels' before building."
    "$venv/bin/pip" install --no-index --no-deps --no-cache-dir --disable-pip-version-check --quiet "$@"
    rm -rf /tmp/mfc-wheels
}

mfc() {
    set -- /tmp/mfc-wheels/mfc/mfc-*.whl
    [ -f "$1" ] || die "no mfc wheel in /tmp/mfc-wheels/mfc: run 'make wheels' before building."
    "$venv/bin/pip" install --no-index --no-deps --no-cache-dir --disable-pip-version-check --quiet "$@"
    "$venv/bin/pip" check --disable-pip-version-check
    rm -rf /tmp/mfc-wheels
}

case "${1:-}" in
    system | deps | mfc) "$1" ;;
    *) die "usage: image-install.sh system|deps|mfc" ;;
esac
