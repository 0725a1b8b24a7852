#!/bin/bash
# Control: how fast new rules take effect, and how far the control plane fans out.
#   1. file -> serving: a rules file rewritten (atomic rename) with a route for a new host;
#      the time until Tether answers 200 for that host (median, p99 over $CHANGES changes).
#   2. control plane -> serving: the same through `tether control-plane` and one sidecar.
#   3. fan-out: $SIDECARS simulated sidecars (perf/cp_load.cc: real HTTP/2 streams, each
#      ACKing every push) on one control plane; the time from a rules change to the last
#      ACK (control plane's own measure, tether_cp_fanout_seconds), over $PUSHES changes,
#      and the control plane's memory per connected sidecar.
# Never CI.
#
# usage: perf/bench_control.sh [path/to/tether]   env: CHANGES (100), SIDECARS (2000), PUSHES (10)
set -euo pipefail
TETHER=$(readlink -f "${1:-build/tether}")
LOAD=$(dirname "$TETHER")/perf/tether-cp-load
CHANGES=${CHANGES:-100}
SIDECARS=${SIDECARS:-2000}
PUSHES=${PUSHES:-10}
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

BACKEND=$(free_port)
start_backend "$BACKEND"
cat > "$DIR/template.yaml" <<EOF2
apiVersion: tether.dev/v1alpha1
kind: Service
metadata: { name: backend }
spec: { endpoints: [ { address: 127.0.0.1:$BACKEND } ] }
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: { name: r }
spec: { hosts: [ "{host}" ], rules: [ { backends: [ { service: backend } ] } ] }
EOF2

echo "== 1. rules file -> serving ($CHANGES changes)"
mkdir -p "$DIR/rules"
sed 's/{host}/first/' "$DIR/template.yaml" > "$DIR/rules/routes.yaml"
P1=$(free_port); A1=$(free_port)
cat > "$DIR/t1.yaml" <<EOF2
admin: { address: 127.0.0.1:$A1 }
workers: 1
listeners: [ { name: outbound, address: 127.0.0.1:$P1, direction: outbound } ]
rules: { files: [ "$DIR/rules/*.yaml" ] }
EOF2
"$TETHER" run -c "$DIR/t1.yaml" > "$DIR/t1.log" 2>&1 &
PIDS+=($!)
wait_up "$P1" first
python3 "$HERE/rule_latency.py" "$P1" "$CHANGES" "$DIR/rules/routes.yaml" "$DIR/template.yaml"

echo "== 2. control plane -> sidecar serving ($CHANGES changes)"
mkdir -p "$DIR/cp"
sed 's/{host}/first/' "$DIR/template.yaml" > "$DIR/cp/routes.yaml"
CP=$(free_port); CPA=$(free_port); P2=$(free_port); A2=$(free_port)
"$TETHER" control-plane --rules "$DIR/cp" --listen "127.0.0.1:$CP" --admin "127.0.0.1:$CPA" \
  > "$DIR/cp.log" 2>&1 &
PIDS+=($!)
CP_PID=$!
sleep 0.3
cat > "$DIR/t2.yaml" <<EOF2
node: { name: bench-sidecar, service: bench }
admin: { address: 127.0.0.1:$A2 }
workers: 1
listeners: [ { name: outbound, address: 127.0.0.1:$P2, direction: outbound } ]
rules: { controlPlane: { address: 127.0.0.1:$CP } }
EOF2
"$TETHER" run -c "$DIR/t2.yaml" > "$DIR/t2.log" 2>&1 &
PIDS+=($!)
T2_PID=$!
wait_up "$P2" first
python3 "$HERE/rule_latency.py" "$P2" "$CHANGES" "$DIR/cp/routes.yaml" "$DIR/template.yaml"
kill "$T2_PID"

echo "== 3. fan-out to $SIDECARS simulated sidecars ($PUSHES changes)"
cp_metric() { curl -s "http://127.0.0.1:$CPA/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
sleep 1
RSS0=$(cp_metric tether_cp_resident_memory_bytes)
"$LOAD" --control-plane "127.0.0.1:$CP" --sidecars "$SIDECARS" > "$DIR/load.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 600); do
  [ "$(cp_metric tether_cp_sidecars_connected)" = "$SIDECARS" ] && break
  sleep 0.1
done
echo "connected: $(cp_metric tether_cp_sidecars_connected) sidecars"
sleep 1
RSS1=$(cp_metric tether_cp_resident_memory_bytes)
awk -v a="$RSS0" -v b="$RSS1" -v n="$SIDECARS" 'BEGIN {
  printf "control plane memory: %.1f MiB idle, %.1f MiB with %d sidecars: %.1f KiB per sidecar\n",
    a / 1048576, b / 1048576, n, (b - a) / n / 1024 }'
RESULTS=()
for i in $(seq 1 "$PUSHES"); do
  V=$(cp_metric tether_cp_version)
  sed "s/{host}/push$i/" "$DIR/template.yaml" > "$DIR/cp/.routes.tmp"
  mv "$DIR/cp/.routes.tmp" "$DIR/cp/routes.yaml"
  for _ in $(seq 1 200); do
    NV=$(cp_metric tether_cp_version)
    F=$(cp_metric tether_cp_fanout_seconds)
    [ "$NV" != "$V" ] && [ -n "$F" ] && break
    sleep 0.05
  done
  RESULTS+=("$F")
  echo "push $i: version $NV answered by all $SIDECARS sidecars in $(awk -v f="$F" 'BEGIN { printf "%.1f", f * 1000 }') ms"
  sleep 0.3
done
printf '%s\n' "${RESULTS[@]}" | sort -g | awk '{ v[NR] = $1 } END {
  printf "fan-out to all sidecars: median %.1f ms, max %.1f ms (target < 2000 ms)\n",
    v[int((NR + 1) / 2)] * 1000, v[NR] * 1000 }'
