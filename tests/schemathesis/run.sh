#!/usr/bin/env bash
# Property-based test of the REST API against the OpenAPI document it serves.
#
# Starts a real `switchboard serve` on 127.0.0.1 with a throw-away SQLite data dir, seeds a little
# data (an API inbox, a conversation, a team, an agent), mints an admin API key and runs
# Schemathesis with `-n` examples per operation. Exits non-zero on any failed check; always stops
# the server.
#
#   tests/schemathesis/run.sh                 # from the repository root
#   SCHEMATHESIS_EXAMPLES=50 SCHEMATHESIS_SEED=7 tests/schemathesis/run.sh
#   SCHEMATHESIS_CHECKS=all tests/schemathesis/run.sh     # also positive / negative data checks
#   SWITCHBOARD_BIN=target/release/switchboard tests/schemathesis/run.sh   # no cargo build
#
# Checks: no answer is a 5xx, and each has a declared status code, content type and headers and a
# body matching the declared schema. Needs python3 (3.9+), curl and PyPI for the first install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SCHEMATHESIS_VERSION="4.32.5"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-20}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${SCHEMATHESIS_VENV:-$TARGET_DIR/schemathesis-venv}"
BIN="${SWITCHBOARD_BIN:-$TARGET_DIR/debug/switchboard}"
PASSWORD="schemathesis-admin-pw"

if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# Build unless a binary was given: a no-op when it is fresh, and a stale one would test old code.
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    cargo build --quiet -p switchboard-server --bin switchboard
fi

DATA_DIR="$(mktemp -d)"
REPORT_DIR="$DATA_DIR/report"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA_DIR"
}
trap stop_server EXIT INT TERM

SWITCHBOARD_BOOTSTRAP__ADMIN_PASSWORD="$PASSWORD" SWITCHBOARD_DATABASE_URL="" RUST_LOG="${RUST_LOG:-warn}" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA_DIR" >"$DATA_DIR/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 200); do
    if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$DATA_DIR/server.log" >&2; echo "server exited" >&2; exit 1; fi
    sleep 0.05
done

# POST JSON with a bearer token and print one field of the answer.
api() { # method path token body field
    curl -fsS -X "$1" "$BASE$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' -d "$4" \
        | python3 -c "import json, sys; print(json.load(sys.stdin)$5)"
}

SESSION="$(curl -fsS "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\": \"admin@example.com\", \"password\": \"$PASSWORD\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
# The fuzzer may PATCH any user (a role change would demote the admin) and log out: the main run
# uses an admin API key, whose role no request can change.
KEY="$(api POST /api/v1/api-tokens "$SESSION" '{"name": "schemathesis", "role": "admin"}' '["token"]')"
INBOX="$(api POST /api/v1/inboxes "$KEY" '{"name": "CRM", "kind": "api", "settings": {"webhook_url": "http://127.0.0.1:9/hook"}}' '["id"]')"
INBOX_TOKEN="$(api POST "/api/v1/inboxes/$INBOX/rotate-token" "$KEY" '{}' '["inbound_token"]')"
api POST "/api/v1/channels/api/$INBOX/messages" "$INBOX_TOKEN" '{"message_id": "m-1", "contact": {"id": "c-1"}, "text": "hi"}' '["conversation_id"]' >/dev/null
api POST /api/v1/teams "$KEY" '{"name": "Sales"}' '["id"]' >/dev/null
api POST /api/v1/users "$KEY" '{"email": "agent@example.com", "name": "Ada", "role": "agent", "password": "agent-password-1"}' '["id"]' >/dev/null

CHECKS="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"
COMMON=(--checks "$CHECKS" --max-examples "$EXAMPLES" --seed "${SCHEMATHESIS_SEED:-1}" --phases examples,coverage,fuzzing
        --suppress-health-check too_slow,filter_too_much --request-timeout 10 --workers 2
        --report junit --report-dir "$REPORT_DIR")
# The ingestion endpoint is fuzzed against the seeded API inbox (random ids would only find 404s).
cat >"$DATA_DIR/schemathesis.toml" <<TOML
[[operations]]
include-path = "/api/v1/channels/api/{inbox_id}/messages"
parameters = { "path.inbox_id" = $INBOX }
TOML
st() { (cd "$DATA_DIR" && "$VENV/bin/schemathesis" --config-file "$DATA_DIR/schemathesis.toml" run "$BASE/api/openapi.json" "${COMMON[@]}" "$@"); }

status=0
# 1. The API channel with the inbox's ingestion token (first: run 2 fuzzes its rotation).
st -H "Authorization: Bearer $INBOX_TOKEN" --include-path '/api/v1/channels/api/{inbox_id}/messages' || status=$?
# 2. Everything else but the calls about the caller's own credentials, with the admin API key.
st -H "Authorization: Bearer $KEY" \
    --exclude-path /api/v1/me --exclude-path /api/v1/auth/logout --exclude-path '/api/v1/api-tokens/{id}' \
    --exclude-path '/api/v1/channels/api/{inbox_id}/messages' || status=$?
# 3. Those with a login session; logout last, as it ends the session.
st -H "Authorization: Bearer $SESSION" --include-path /api/v1/me --include-path '/api/v1/api-tokens/{id}' || status=$?
st -H "Authorization: Bearer $SESSION" --include-path /api/v1/auth/logout || status=$?

if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status); server log: " >&2
    tail -n 50 "$DATA_DIR/server.log" >&2
fi
exit "$status"
