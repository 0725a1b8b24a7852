#!/bin/bash
# The cost of caller authentication across two sidecar hops: wrk -> caller Tether (outbound)
# -> callee Tether (inbound) -> nginx, small GETs, run in alternation in one session:
#   plain  no authentication
#   hmac   the caller signs every request (HmacAuth outbound), the callee verifies it
#          (HmacAuth inbound: signature, clock, nonce cache, an allow rule)
#   mtls   the hop between the sidecars in mutual TLS (client certificate with a SPIFFE ID,
#          verified by the callee and mapped to the caller, an allow rule); keep-alive
#          connections, so this is mostly the cost of encrypting the bytes
# Both Tethers of a pair share the proxy CPU (2-core machines), which the two hops would not
# in a mesh: each would run on its own host. Sharing one core, every request the caller
# forwards wakes the callee, and with Linux's wakeup preemption the two interrupt each other:
# the config doing more work per request pays for more switches (measured: 0.15 switches per
# request and sidecar without auth, 0.32 with HMAC), a cost two hosts do not have. So the
# rounds run twice: with both Tethers SCHED_BATCH (same CPU share, no wakeup preemption: each
# hop finishes what it has, as on its own host), which carries the target, and with default
# scheduling, reported. Besides requests/s, the CPU time both sidecars spent per request
# (user + system, from /proc) and their context switches per request are printed.
# Target: hmac >= 0.9x plain (SCHED_BATCH); mtls / plain and default scheduling are reported.
# Never CI.
#
# usage: perf/bench_auth.sh [path/to/tether]   env: ROUNDS (5), DURATION (5s), CONNS (32)
set -euo pipefail
TETHER=$(readlink -f "${1:-build/tether}")
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
. "$(dirname "$0")/lib.sh"

BACKEND=$(free_port)
start_backend "$BACKEND"
printf 'orders-secret-for-the-benchmark\n' > "$DIR/orders.key"
CERTS="$(dirname "$0")/../deploy/tether-certs.sh"
"$CERTS" ca "$DIR/pki"
"$CERTS" issue "$DIR/pki" callee spiffe://bench/ns/default/sa/callee localhost
"$CERTS" issue "$DIR/pki" orders spiffe://bench/ns/default/sa/orders

doc() { printf -- '    - apiVersion: tether.dev/v1alpha1\n      kind: %s\n      metadata: { name: %s }\n      spec: %s\n' "$1" "$2" "$3"; }

# callee NAME PORT ADMIN MODE: inbound listener in front of nginx.
callee() {
  local f="$DIR/$1.yaml"
  local tls=""
  [ "$4" = mtls ] && tls=", tls: { certFile: $DIR/pki/callee.crt, keyFile: $DIR/pki/callee.key, caFile: $DIR/pki/ca.crt }"
  printf 'admin: { address: 127.0.0.1:%s }\nworkers: 1\nlisteners:\n  - { name: inbound, address: 127.0.0.1:%s, direction: inbound%s }\nlocalApp: { address: 127.0.0.1:%s }\n' "$3" "$2" "$tls" "$BACKEND" > "$f"
  if [ "$4" = hmac ]; then
    printf 'rules:\n  inline:\n' >> "$f"
    doc HmacAuth callers "{ direction: inbound, keys: [ { id: orders-1, caller: orders, secretFile: $DIR/orders.key } ], allow: [ { caller: orders } ], clockSkew: 60s, nonceCacheSize: 2000000 }" >> "$f"
  elif [ "$4" = mtls ]; then
    printf 'rules:\n  inline:\n' >> "$f"
    doc HmacAuth callers "{ direction: inbound, peers: [ { identity: \"spiffe://bench/ns/default/sa/orders\", caller: orders } ], allow: [ { caller: orders } ] }" >> "$f"
  fi
}

# caller NAME PORT ADMIN CALLEE_PORT MODE: outbound listener routing every host to the callee.
caller() {
  local f="$DIR/$1.yaml"
  printf 'admin: { address: 127.0.0.1:%s }\nworkers: 1\nlisteners:\n  - { name: outbound, address: 127.0.0.1:%s, direction: outbound }\n' "$3" "$2" > "$f"
  if [ "$5" = mtls ]; then
    printf 'rules:\n  inline:\n' >> "$f"
    doc Service backend "{ tls: { sni: localhost, caFile: $DIR/pki/ca.crt, certFile: $DIR/pki/orders.crt, keyFile: $DIR/pki/orders.key }, endpoints: [ { address: 127.0.0.1:$4 } ] }" >> "$f"
    doc Route all '{ hosts: [ "*" ], rules: [ { backends: [ { service: backend } ] } ] }' >> "$f"
  else
    catchall_rules "$4" >> "$f"
  fi
  if [ "$5" = hmac ]; then
    doc HmacAuth sign "{ direction: outbound, keys: [ { id: orders-1, secretFile: $DIR/orders.key } ] }" >> "$f"
  fi
}

declare -A OUT TPIDS
for mode in plain hmac mtls; do
  in=$(free_port); out=$(free_port)
  callee "$mode-callee" "$in" "$(free_port)" "$mode"
  caller "$mode-caller" "$out" "$(free_port)" "$in" "$mode"
  $PROXY_CPU "$TETHER" run -c "$DIR/$mode-callee.yaml" --log-level warn 2>"$DIR/$mode-callee.log" & PIDS+=($!)
  $PROXY_CPU "$TETHER" run -c "$DIR/$mode-caller.yaml" --log-level warn 2>"$DIR/$mode-caller.log" & PIDS+=($!)
  OUT[$mode]=$out
  TPIDS[$mode]="${PIDS[-2]} ${PIDS[-1]}"
done
for mode in plain hmac mtls; do wait_up "${OUT[$mode]}"; done

# cpu_ticks PID...: user + system clock ticks the processes used so far.
cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
SECONDS_PER_RUN=$(awk -v d="$DURATION" 'BEGIN { sub(/s$/, "", d); print d }')
HZ=$(getconf CLK_TCK)

# switches PID...: context switches of every thread of the processes so far.
switches() {
  for p in "$@"; do cat /proc/"$p"/task/*/status; done | awk '/ctxt_switches/ {s += $2} END {print s}'
}
# set_policy batch|other: the scheduling policy of every thread of every Tether.
set_policy() {
  for mode in plain hmac mtls; do
    for p in ${TPIDS[$mode]}; do
      for t in /proc/"$p"/task/*; do chrt --"$1" -p 0 "${t##*/}" >/dev/null; done
    done
  done
}

for policy in batch other; do
  set_policy "$policy"
  declare -A RPS=() P99=() CPU=() CSW=()
  for r in $(seq 1 "$ROUNDS"); do
    for mode in plain hmac mtls; do
      # shellcheck disable=SC2086
      before=$(cpu_ticks ${TPIDS[$mode]}); sw=$(switches ${TPIDS[$mode]})
      read -r rps p99 <<<"$(run_wrk "${OUT[$mode]}")"
      # shellcheck disable=SC2086
      after=$(cpu_ticks ${TPIDS[$mode]}); sw2=$(switches ${TPIDS[$mode]})
      us=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$rps" -v s="$SECONDS_PER_RUN" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / (r * s) }')
      cs=$(awk -v n=$((sw2 - sw)) -v r="$rps" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.3f", n / (r * s) }')
      RPS[$mode]="${RPS[$mode]:-} $rps"; P99[$mode]="${P99[$mode]:-} $p99"
      CPU[$mode]="${CPU[$mode]:-} $us"; CSW[$mode]="${CSW[$mode]:-} $cs"
    done
  done
  echo
  if [ "$policy" = batch ]; then
    echo "== both Tethers SCHED_BATCH (the hops as on separate hosts): carries the target"
  else
    echo "== default scheduling (the hops preempting each other on one core): reported"
  fi
  echo "wrk -t1 -c$CONNS -d$DURATION through two Tether hops, $ROUNDS rounds in alternation, median; both Tethers on CPU $LAST"
  printf '%-30s %11s %8s %9s %9s   %s\n' config "requests/s" "p99 ms" "CPU us/r" "switch/r" "requests/s by round"
  for mode in plain hmac mtls; do
    case $mode in
      plain) label="plain (no authentication)" ;;
      hmac) label="hmac (sign + verify)" ;;
      mtls) label="mtls (between the sidecars)" ;;
    esac
    printf '%-30s %11.0f %8.3f %9.2f %9.3f  %s\n' "$label" "$(median "${RPS[$mode]}")" \
      "$(median "${P99[$mode]}")" "$(median "${CPU[$mode]}")" "$(median "${CSW[$mode]}")" "${RPS[$mode]}"
  done
  target="(reported)"
  [ "$policy" = batch ] && target="(target >= 0.9)"
  echo "hmac / plain: $(awk -v a="$(median "${RPS[hmac]}")" -v b="$(median "${RPS[plain]}")" 'BEGIN{printf "%.3f", a/b}')x $target"
  echo "CPU per request, hmac / plain: $(awk -v a="$(median "${CPU[hmac]}")" -v b="$(median "${CPU[plain]}")" 'BEGIN{printf "%.3f", a/b}')x (both sidecars together)"
  echo "mtls / plain: $(awk -v a="$(median "${RPS[mtls]}")" -v b="$(median "${RPS[plain]}")" 'BEGIN{printf "%.3f", a/b}')x (reported)"
done
