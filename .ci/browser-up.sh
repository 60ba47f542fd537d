#!/usr/bin/env bash
# Install Debian's Chromium for the web UI tests (playwright drives it as the system browser:
# its own browser download cannot reach its host here). Idempotent; needs root on a bare machine.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "browser-up: /usr/bin/chromium is missing and installing it needs root: run 'sudo $0'." >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
echo "browser-up: installing chromium with apt-get" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version >&2
