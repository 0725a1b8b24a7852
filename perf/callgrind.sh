#!/bin/bash
# Instructions per request on the HTTP/1.1 hot path, counted by callgrind: Tether (1 worker)
# in front of the nginx backend, keep-alive both sides, the bench's request path. Two runs
# of N1 and N2 requests; the difference divided by N2 - N1 leaves out start-up and shutdown.
# Given a second binary (a build of an earlier commit), both are counted and compared: the
# figure a change on the hot path reports. Never part of CI.
#
# usage: perf/callgrind.sh [path/to/tether] [path/to/baseline-tether]
#        env: N1 (2000), N2 (12000), WRK_PATH (/api/v1/items/42?user=7&page=2)
set -euo pipefail
N1=${N1:-2000}
N2=${N2:-12000}
WRK_PATH=${WRK_PATH:-/api/v1/items/42?user=7&page=2}
. "$(dirname "$0")/lib.sh"
need valgrind h2load nginx curl
BACKEND=$(free_port)
start_backend "$BACKEND"
wait_up "$BACKEND"

# count BINARY REQUESTS: total instructions of one run that serves REQUESTS requests.
count() {
  local port admin out
  port=$(free_port); admin=$(free_port); out="$DIR/callgrind.$RANDOM"
  cat > "$DIR/tether.yaml" <<CONF
admin: { address: 127.0.0.1:$admin }
workers: 1
drain: { grace: 0s, timeout: 5s }
listeners:
  - { name: outbound, address: 127.0.0.1:$port, direction: outbound }
CONF
  catchall_rules "$BACKEND" >> "$DIR/tether.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" run -c "$DIR/tether.yaml" \
    --log-level warn 2>"$DIR/valgrind.log" &
  local pid=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$admin/ready" >/dev/null && break
    sleep 0.1
  done
  h2load --h1 -n "$2" -c 4 "http://127.0.0.1:$port$WRK_PATH" | grep -E '^requests:' >&2
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

# per_request BINARY: prints instructions per request.
per_request() {
  local a b
  a=$(count "$1" "$N1")
  b=$(count "$1" "$N2")
  echo $(( (b - a) / (N2 - N1) ))
}

NEW=$(per_request "$(readlink -f "${1:-build/tether}")")
echo "instructions per request: $NEW ($WRK_PATH, keep-alive, $N1 and $N2 requests)"
if [ $# -ge 2 ]; then
  OLD=$(per_request "$(readlink -f "$2")")
  echo "baseline: $OLD; new / baseline: $(awk -v n="$NEW" -v o="$OLD" 'BEGIN { printf "%.3f", n / o }')"
fi
