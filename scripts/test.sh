#!/usr/bin/env bash
# Runs every test Switchboard has, on a fresh machine or a used one:
#   1. starts (installing if needed) PostgreSQL, MariaDB and Redis;
#   2. installs the Node packages of the end-to-end suite (the official socket.io-client) and
#      the platforms' Python SDKs, and regenerates the gateway's SDK-made fixtures;
#   3. runs the Rust tests: core, the storage conformance suite on all three databases, the bus
#      on real Redis, the server's in-process API tests;
#   4. runs the end-to-end suite: the real `switchboard` binary driven by socket.io-client, on
#      SQLite and on Postgres + Redis with two server processes; then the fault-injection suite
#      (tests/faults: nodes killed, Redis and PostgreSQL restarted, the platform down, stalled
#      agent sockets, all under load);
#   5. fuzzes the REST API with schemathesis against its own OpenAPI document;
#   6. smoke-runs every benchmark scenario for a few seconds (so the harness does not rot);
#   7. builds the browser console and widget and drives them in Debian's Chromium with
#      Playwright (installing Chromium if missing). Last, so the run closes on a test
#      runner's summary.
# Every backend is required: a database that cannot be reached fails the run instead of being
# skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

export SWITCHBOARD_TEST_REQUIRE_ALL=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

bash scripts/services.sh

if ! command -v node >/dev/null 2>&1; then
  echo "test: installing Node.js"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# The gateway's inbound fixtures are produced and signed by the platforms' official SDKs
# (python-telegram-bot, line-bot-sdk, wechatpy); regenerate them so the adapters are checked
# against what the SDKs emit today.
echo "== Platform SDK fixtures"
python3 -m pip install --quiet --disable-pip-version-check -r gateway-adapters/fixtures/requirements.txt
for generator in gateway-adapters/fixtures/*/generate.py; do
  python3 "$generator"
done

echo "== Rust tests"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -- --test-threads=4

echo "== End-to-end tests (real server, socket.io-client)"
cargo build -p switchboard-server --bin switchboard --locked
(cd tests/e2e && npm test)

echo "== Fault injection (kill -9 of a node, Redis and PostgreSQL restarts, platform outage, stalled sockets)"
# Short form; FAULTS_LONG=1 (cd tests/faults && npm test) is the long one. Uses tests/e2e's packages.
(cd tests/faults && npm test)

echo "== Schemathesis against the served OpenAPI document (no 5xx, responses match the schema)"
SWITCHBOARD_BIN=target/debug/switchboard bash tests/schemathesis/run.sh

echo "== Benchmark harness smoke run (debug build: checks loss/duplicates, never timing)"
LOADGEN_PROFILE=debug bash load-tests/run.sh --smoke

echo "== Browser tests (console and widget in Chromium via Playwright)"
bash tests/browser/run.sh
