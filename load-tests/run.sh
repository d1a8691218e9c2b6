#!/usr/bin/env bash
# Builds the release server and the load generator, then runs the benchmark scenarios.
#
#   load-tests/run.sh                      every scenario at full size (several minutes); results in
#                                          load-tests/results/, then `loadgen report` rewrites the
#                                          figures section of docs/benchmarks.md
#   load-tests/run.sh routing limits       only these scenarios (inbound, connections, routing,
#                                          routing-nodes, peer, limits)
#   load-tests/run.sh --smoke [scenario…]  a few seconds per scenario with tiny sizes; results in
#                                          load-tests/results/smoke/ (what CI calls to keep the
#                                          harness from rotting; docs are not touched)
#
# Needs a local Postgres on 127.0.0.1:5432 with trust auth for user `postgres` (override with
# LOADGEN_PG=host:port; LOADGEN_SKIP_POSTGRES=1 skips the Postgres runs, routing-nodes and the
# pgbench ceiling) and Redis on 127.0.0.1:6379 (LOADGEN_REDIS=host:port; routing-nodes and the
# redis-benchmark ceiling). LOADGEN_NO_BUILD=1 uses the binaries already built;
# LOADGEN_PROFILE=debug builds and uses debug binaries, which is how the test command smoke-runs
# the harness without a release build — never quote figures from a debug run. Exits non-zero
# when a scenario loses or duplicates messages, a request or connection fails, a routing
# invariant breaks (double assignment, over capacity, stuck conversation), or a run errors. It
# never judges timing: the numbers are printed and written, not asserted.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

smoke=0
scenarios=()
all_scenarios=(inbound connections routing routing-nodes peer limits)
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    inbound|connections|routing|routing-nodes|peer|limits) scenarios+=("$arg") ;;
    *) echo "usage: $0 [--smoke] [${all_scenarios[*]}]..." >&2; exit 2 ;;
  esac
done
if [[ ${#scenarios[@]} == 0 ]]; then
  scenarios=("${all_scenarios[@]}")
fi
wants() {
  local s
  for s in "${scenarios[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}

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
  # routing and limits need no server.
  if wants inbound || wants connections || wants routing-nodes || wants peer; then
    cargo build "${build_flags[@]}" -p switchboard-server --bin switchboard
  fi
  cargo build "${build_flags[@]}" -p switchboard-load-tests --bin loadgen
fi

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
loadgen="$target_dir/$profile/loadgen"
export SWITCHBOARD_BIN="$target_dir/$profile/switchboard"
pg="${LOADGEN_PG:-127.0.0.1:5432}"
redis="${LOADGEN_REDIS:-127.0.0.1:6379}"
skip_pg=()
if [[ "${LOADGEN_SKIP_POSTGRES:-0}" == 1 ]]; then
  skip_pg=(--skip-postgres)
fi

dbs=(sqlite)
if [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
  dbs+=(postgres)
fi

# The Node.js reference server of `peer` and `connections --target node` (Socket.IO 4, pg), from
# the npm registry.
if wants peer || wants connections; then
  if ! command -v node >/dev/null 2>&1; then
    echo "peer: Node.js is needed for the reference server (apt-get install nodejs npm)" >&2
    exit 2
  fi
  (cd "$here/baselines" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
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
  if wants inbound; then
    for db in "${dbs[@]}"; do
      run inbound --db "$db" --pg-addr "$pg" --results-dir "$out" \
        --agents 5 --rate 50 --duration 3 --contacts 20 --drain-timeout 10
    done
  fi
  if wants connections; then
    run connections --db sqlite --results-dir "$out" --sizes 50,150 --agents 3 --settle 0.5
    run connections --target node --results-dir "$out" --sizes 50,150 --settle 0.5
  fi
  if wants routing; then
    run routing --results-dir "$out" --agents 2000 --duration 3 --check-every 2000
    run routing --results-dir "$out" --name routing-offers --offers --agents 500 --duration 2 --check-every 2000
    run routing --results-dir "$out" --name routing-decide --engine decide --agents 2000 --duration 2 --check-every 2000
  fi
  if wants routing-nodes && [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
    run routing-nodes --pg-addr "$pg" --redis-url "redis://$redis" --results-dir "$out" \
      --agents 4 --capacity 2 --conversations 60 --in-flight 8 --drain-timeout 20
  fi
  if wants peer; then
    run peer --mode relay --results-dir "$out" --pairs 5 --duration 3
    if [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
      run peer --mode durable --db postgres --pg-addr "$pg" --results-dir "$out" --pairs 5 --duration 3 --interval-ms 200
    fi
  fi
  if wants limits; then
    run limits --results-dir "$out" --pg-addr "$pg" --redis-addr "$redis" "${skip_pg[@]}" \
      --duration 1 --pg-clients 1,4 --echo-connections 4 --echo-window 16 --redis-requests 5000
  fi
else
  out="$here/results"
  if wants inbound; then
    for db in "${dbs[@]}"; do
      for rate in 500 2000; do
        run inbound --db "$db" --pg-addr "$pg" --results-dir "$out" --rate "$rate" --duration 30
      done
    done
  fi
  if wants connections; then
    run connections --db sqlite --results-dir "$out" --sizes 2000,6000 --hold 30
    # The same idle connections on the Node.js + Socket.IO reference server (load-tests/baselines).
    run connections --target node --results-dir "$out" --sizes 2000,6000 --hold 30
  fi
  if wants routing; then
    run routing --results-dir "$out" --agents 2000 --duration 20
    run routing --results-dir "$out" --name routing-offers --offers --agents 2000 --duration 20
    run routing --results-dir "$out" --name routing-decide --engine decide --agents 2000 --duration 20
  fi
  if wants routing-nodes && [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
    run routing-nodes --pg-addr "$pg" --redis-url "redis://$redis" --results-dir "$out" \
      --agents 200 --capacity 3 --conversations 2000 --in-flight 16
  fi
  if wants peer; then
    # Relay: 2000 customers, one typing notice each per 1.1 s (~1,800/s offered).
    run peer --mode relay --results-dir "$out" --pairs 2000 --interval-ms 1100 --duration 30
    if [[ "${LOADGEN_SKIP_POSTGRES:-0}" != 1 ]]; then
      # Durable: 200 customers, one message each per 100 ms (2,000/s offered), on Postgres.
      run peer --mode durable --db postgres --pg-addr "$pg" --results-dir "$out" --pairs 200 --interval-ms 100 --duration 30
    fi
  fi
  if wants limits; then
    run limits --results-dir "$out" --pg-addr "$pg" --redis-addr "$redis" "${skip_pg[@]}" --duration 10
  fi
  echo
  echo "\$ loadgen report"
  "$loadgen" report --results-dir "$out" || failed=1
fi

if [[ $failed != 0 ]]; then
  echo "some scenarios failed (see above)" >&2
  exit 1
fi
echo "all scenarios finished; results in $out"
