#!/usr/bin/env bash
# Builds Switchboard and runs one node on the embedded default: SQLite in ./data, the in-process
# bus, no external services. Prints the URL and, on the first start, the admin login.
# The browser console and widget (web-agent/) are built too when Node.js is available; without it
# the node serves the minimal demo pages instead.
# Extra arguments go to `switchboard serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "run: Rust is required (https://rustup.rs)" >&2
  exit 1
fi
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  echo "run: building the console (web-agent/)"
  # `npm install` is the fallback when `npm ci` refuses a lock file written against a registry
  # mirror that lacks rollup's optional packages for other platforms (same locked versions).
  (cd web-agent && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; } && npm run build)
else
  echo "run: Node.js not found: serving the demo pages (/demo/agent.html) instead of the console" >&2
fi
cargo build --release --locked -p switchboard-server --bin switchboard
export SWITCHBOARD_WEB_DIR="${SWITCHBOARD_WEB_DIR:-$PWD/web-agent/dist}"
exec ./target/release/switchboard serve --data-dir ./data "$@"
