#!/usr/bin/env bash
# Builds Switchboard and runs one node on the embedded default: SQLite in ./data, the in-process
# bus, no external services. Prints the URL and, on the first start, the admin login.
# Extra arguments go to `switchboard serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "run: Rust is required (https://rustup.rs)" >&2
  exit 1
fi
cargo build --release --locked -p switchboard-server --bin switchboard
exec ./target/release/switchboard serve --data-dir ./data "$@"
