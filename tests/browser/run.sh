#!/usr/bin/env bash
# Browser tests: builds the console and widget (web-agent/), builds the server binary if it is
# missing, installs Debian's Chromium (and a CJK font for the zh-CN screenshots) if missing, then
# runs the Playwright scenarios with node's test runner. Exits non-zero on any failure.
# Screenshots land in tests/browser/artifacts/ (and the current ones in docs/screenshots/).
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
REPO=$(cd ../.. && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "$@" || { as_root apt-get update && as_root apt-get install -y --no-install-recommends "$@"; }
}

if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  echo "browser tests: installing Debian's chromium"
  apt_install chromium
fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  echo "browser tests: installing a CJK font (fonts-wqy-microhei) for the zh-CN console"
  apt_install fonts-wqy-microhei || echo "browser tests: no CJK font; Chinese text renders as boxes in screenshots" >&2
fi

echo "browser tests: building web-agent"
# `npm ci` first; if it refuses (a registry mirror without rollup's optional packages for other
# platforms leaves them out of the lock file, which `npm ci` counts as out of sync), `npm install`
# installs the same locked versions.
(cd "$REPO/web-agent" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; } && npm run build)

# The server binary: SWITCHBOARD_BIN as given, else target/debug/switchboard, built when missing
# or older than a source file (a stale binary would lack the static routes these tests load).
BIN=${SWITCHBOARD_BIN:-$REPO/target/debug/switchboard}
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
  if [ ! -x "$BIN" ] || [ -n "$(find "$REPO/server/src" "$REPO/core/src" "$REPO/storage/src" "$REPO/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
    echo "browser tests: building the server binary"
    (cd "$REPO" && cargo build --locked -p switchboard-server --bin switchboard)
  fi
fi

(cd "$HERE" && npm ci --no-audit --no-fund)
export SWITCHBOARD_BIN="$BIN"
cd "$HERE"
exec node --test --test-concurrency=1 --test-timeout=180000 ./*.test.mjs
