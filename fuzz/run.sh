#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) and fails if any crashes. Built
# as cargo-fuzz builds by default: optimized, with debug assertions (overflow checks) and ASan.
#
#   fuzz/run.sh                  # every target, 60 s each
#   FUZZ_SECONDS=600 fuzz/run.sh # the long form: 10 minutes each
#   fuzz/run.sh wechat_webhook   # some targets only
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain
# install nightly`; cargo-fuzz passes nightly-only -Z flags). Without a nightly toolchain,
# FUZZ_TOOLCHAIN=stable uses the stable compiler with RUSTC_BOOTSTRAP=1 (both work with
# cargo-fuzz 0.13.2 and Rust 1.95 / nightly).
#
# Inputs: the committed seeds (fuzz/seeds/<target>, read only) plus a working corpus
# (fuzz/corpus/<target>, git-ignored) where libFuzzer keeps what it finds. A crash leaves its
# input in fuzz/artifacts/<target>/; reproduce with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if [ "$toolchain" = stable ]; then
  export RUSTC_BOOTSTRAP=1
  cargo_cmd=(cargo fuzz)
else
  cargo_cmd=(cargo "+$toolchain" fuzz)
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${cargo_cmd[@]}" list)
fi

"${cargo_cmd[@]}" build
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target: ${seconds}s"
  log="$(mktemp)"
  if "${cargo_cmd[@]}" run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
  else
    failed+=("$target")
    tail -40 "$log"
  fi
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s each without a crash"
