#!/usr/bin/env bash
# Builds the release server and the load generator, then runs every benchmark scenario.
#
#   load-tests/run.sh            full runs (several minutes); results in load-tests/results/
#   load-tests/run.sh --smoke    ~3 s per scenario with tiny sizes; results in load-tests/results/smoke/
#                                (what CI calls to keep the harness from rotting)
#
# Needs a local Postgres on 127.0.0.1:5432 with trust auth for user `postgres` (override with
# LOADGEN_PG=host:port; LOADGEN_SKIP_POSTGRES=1 skips the Postgres runs; LOADGEN_NO_BUILD=1
# uses the binaries already built; LOADGEN_PROFILE=debug builds and uses debug binaries, which
# is how the test command smoke-runs the harness without a release build — never quote figures
# from a debug run). Exits non-zero when a
# scenario loses or duplicates messages, a request or connection fails, or a run errors. It
# never judges timing: the numbers are printed and written, not asserted.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

# Idle-connection runs need one descriptor per connection on each side.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-files limit: $(ulimit -n)"

profile="${LOADGEN_PROFILE:-release}"
case "$profile" in
  release) build_flags=(--release) ;;
  debug) build_flags=() ;;
  *) echo "LOADGEN_PROFILE must be release or debug" >&2; exit 2 ;;
esac
if [[ "${LOADGEN_NO_BUILD:-0}" != 1 ]]; then
  cargo build "${build_flags[@]}" -p switchboard-server --bin switchboard
  cargo build "${build_flags[@]}" -p switchboard-load-tests --bin loadgen
fi

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
loadgen="$target_dir/$profile/loadgen"
export SWITCHBOARD_BIN="$target_dir/$profile/switchboard"
pg="${LOADGEN_PG:-127.0.0.1:5432}"

dbs=(sqlite)
if [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
  dbs+=(postgres)
fi

failed=0
run() {
  echo
  echo "\$ loadgen $*"
  if ! "$loadgen" "$@"; then
    echo "!! loadgen $* failed" >&2
    failed=1
  fi
}

if [[ $smoke == 1 ]]; then
  out="$here/results/smoke"
  for db in "${dbs[@]}"; do
    run inbound --db "$db" --pg-addr "$pg" --results-dir "$out" \
      --agents 5 --rate 50 --duration 3 --contacts 20 --drain-timeout 10
  done
  run connections --db sqlite --results-dir "$out" --sizes 50,150 --agents 3 --settle 0.5
else
  out="$here/results"
  for db in "${dbs[@]}"; do
    for rate in 500 2000; do
      run inbound --db "$db" --pg-addr "$pg" --results-dir "$out" --rate "$rate" --duration 30
    done
  done
  run connections --db sqlite --results-dir "$out" --sizes 2000,6000 --hold 30
fi

if [[ $failed != 0 ]]; then
  echo "some scenarios failed (see above)" >&2
  exit 1
fi
echo "all scenarios finished; results in $out"
