#!/bin/bash
# Runs every fuzz target of a `make build-fuzz` tree for SECONDS each (libFuzzer, ASan+UBSan,
# one process per target), starting from the repository's corpus (tests/fuzz/corpus/<target>)
# and (the HTTP/1 request targets) the desync corpus when ../shared has it. New inputs go to BUILD/corpus/<target>,
# crashes to BUILD/artifacts/. Prints per target: executions, coverage (cov: edges,
# ft: features), corpus size, and whether it found anything; exits 1 if any target did.
#
# usage: tests/fuzz/run.sh BUILD SECONDS [TARGET...]
#   env: FUZZ_JOBS (1: processes per target), FUZZ_RUNS (stop a target after this many
#        executions instead; 0: no limit)
set -uo pipefail
BUILD=$1
SECONDS_EACH=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in "$BUILD"/tests/fuzz/fuzz_*; do TARGETS+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
# The desync corpus (optional data beside the repository) as raw requests.
DESYNC_SEEDS=""
if [ -d "$HERE/../../../shared/corpora" ] &&
   "$HERE/desync_seeds.py" "$HERE/../../../shared/corpora" "$BUILD/desync-seeds" >/dev/null; then
  DESYNC_SEEDS="$BUILD/desync-seeds"
fi
mkdir -p "$BUILD/artifacts"
failed=0
printf '%-16s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for t in "${TARGETS[@]}"; do
  bin="$BUILD/tests/fuzz/fuzz_$t"
  work="$BUILD/corpus/$t"
  mkdir -p "$work"
  seeds=("$HERE/corpus/$t")
  # The HTTP/1 targets share their inputs' shape: the request corpus seeds the differential.
  if [ "$t" = http1_differential ]; then seeds+=("$HERE/corpus/http1_request"); fi
  if [ -n "$DESYNC_SEEDS" ] && [[ $t = http1_request || $t = http1_differential ]]; then
    seeds+=("$DESYNC_SEEDS")
  fi
  log="$BUILD/fuzz_$t.log"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$SECONDS_EACH" -runs="${FUZZ_RUNS:--1}" -timeout=1 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$BUILD/artifacts/$t-" "$work" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  corpus=$(ls "$work" | wc -l)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FOUND (exit $rc): $(grep -m1 -E 'ERROR|runtime error|timeout|leak' "$log" | cut -c1-120)"
    failed=1
  fi
  printf '%-16s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$result"
done
exit $failed
