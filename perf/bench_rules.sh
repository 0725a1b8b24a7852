#!/bin/bash
# The cost of a realistic outbound rule set: Tether with only a catch-all route ("core")
# against Tether with 20 services, 50 routes with header matches and weighted backends and
# a TrafficLabel ("rules"), both in front of the same nginx backend, run in alternation in
# one session. The requests hit the last-declared host and carry the matched header, so
# they take the long way through the route table. Target: rules >= 0.95x core. A third
# config ("protected") is core plus one RateLimit and one CircuitBreaker on the route, with
# limits too high to trigger: the cost of the protections. Target: >= 0.95x core. Never CI.
#
# usage: perf/bench_rules.sh [path/to/tether]   env: ROUNDS (3), DURATION (5s), CONNS (32)
set -euo pipefail
TETHER=$(readlink -f "${1:-build/tether}")
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
. "$(dirname "$0")/lib.sh"

BACKEND=$(free_port)
start_backend "$BACKEND"

doc() { printf -- '    - apiVersion: tether.dev/v1alpha1\n      kind: %s\n      metadata: { name: %s }\n      spec: %s\n' "$1" "$2" "$3"; }

write_config() {  # write_config NAME PORT ADMIN realistic|core|protected
  local f="$DIR/$1.yaml"
  printf 'admin: { address: 127.0.0.1:%s }\nworkers: 1\nlisteners:\n  - { name: outbound, address: 127.0.0.1:%s, direction: outbound }\nrules:\n  inline:\n' "$3" "$2" > "$f"
  if [ "$4" != realistic ]; then
    doc Service backend "{ endpoints: [ { address: 127.0.0.1:$BACKEND } ] }" >> "$f"
    doc Route all '{ hosts: [ "*" ], rules: [ { backends: [ { service: backend } ] } ] }' >> "$f"
    if [ "$4" = protected ]; then
      doc RateLimit qps '{ target: { route: all }, algorithm: token_bucket, limit: 100000000, per: 1s }' >> "$f"
      doc CircuitBreaker cb '{ target: { service: backend }, strategy: error_ratio, threshold: 0.5 }' >> "$f"
    fi
    return
  fi
  for s in $(seq 1 20); do
    doc Service "svc$s" "{ endpoints: [ { address: 127.0.0.1:$BACKEND, labels: { version: v1 } }, { address: 127.0.0.1:$BACKEND, labels: { version: v2 } } ] }" >> "$f"
  done
  for r in $(seq 1 50); do
    s=$(( (r - 1) % 20 + 1 ))
    doc Route "route$r" "{ hosts: [ \"host$r\", \"host$r:8080\" ], rules: [
        { match: { pathPrefix: /admin, headers: { x-admin: { exact: \"yes\" } } }, backends: [ { service: svc$s } ] },
        { match: { headers: { x-tenant: { prefix: \"t$r-\" } } }, backends: [ { service: svc$s, subset: { version: v1 }, weight: 90 }, { service: svc$s, subset: { version: v2 }, weight: 10 } ], timeout: 2s },
        { match: { pathPrefix: / }, backends: [ { service: svc$s } ] } ] }" >> "$f"
  done
  doc TrafficLabel beta '{ match: { headers: { x-user-group: { exact: beta } } }, label: gray }' >> "$f"
}

CORE=$(free_port); CORE_ADMIN=$(free_port); RULES=$(free_port); RULES_ADMIN=$(free_port)
PROT=$(free_port); PROT_ADMIN=$(free_port)
write_config core "$CORE" "$CORE_ADMIN" core
write_config rules "$RULES" "$RULES_ADMIN" realistic
write_config protected "$PROT" "$PROT_ADMIN" protected
"$TETHER" validate -c "$DIR/rules.yaml" >/dev/null
"$TETHER" validate -c "$DIR/protected.yaml" >/dev/null
$PROXY_CPU "$TETHER" run -c "$DIR/core.yaml" --log-level warn 2>"$DIR/core.log" & PIDS+=($!)
$PROXY_CPU "$TETHER" run -c "$DIR/rules.yaml" --log-level warn 2>"$DIR/rules.log" & PIDS+=($!)
$PROXY_CPU "$TETHER" run -c "$DIR/protected.yaml" --log-level warn 2>"$DIR/protected.log" & PIDS+=($!)
wait_up "$CORE"; wait_up "$RULES" host50; wait_up "$PROT"

declare -A RPS P99
for r in $(seq 1 "$ROUNDS"); do
  read -r rps p99 <<<"$(run_wrk "$CORE")"
  RPS[core]="${RPS[core]:-} $rps"; P99[core]="${P99[core]:-} $p99"
  read -r rps p99 <<<"$(run_wrk "$RULES" -H 'Host: host50' -H 'x-tenant: t50-acme')"
  RPS[rules]="${RPS[rules]:-} $rps"; P99[rules]="${P99[rules]:-} $p99"
  read -r rps p99 <<<"$(run_wrk "$PROT")"
  RPS[prot]="${RPS[prot]:-} $rps"; P99[prot]="${P99[prot]:-} $p99"
done
echo
echo "wrk -t1 -c$CONNS -d$DURATION, $ROUNDS rounds in alternation, median; 1 worker; proxy on CPU $LAST"
printf '%-28s %12s %10s\n' config "requests/s" "p99 ms"
printf '%-28s %12.0f %10.3f\n' "core (1 catch-all route)" "$(median "${RPS[core]}")" "$(median "${P99[core]}")"
printf '%-28s %12.0f %10.3f\n' "rules (20 svc, 50 routes)" "$(median "${RPS[rules]}")" "$(median "${P99[rules]}")"
printf '%-28s %12.0f %10.3f\n' "protected (limit + breaker)" "$(median "${RPS[prot]}")" "$(median "${P99[prot]}")"
echo "protected / core: $(awk -v a="$(median "${RPS[prot]}")" -v b="$(median "${RPS[core]}")" 'BEGIN{printf "%.3f", a/b}')x (target >= 0.95)"
echo "rules / core: $(awk -v a="$(median "${RPS[rules]}")" -v b="$(median "${RPS[core]}")" 'BEGIN{printf "%.3f", a/b}')x (target >= 0.95)"
curl -s "http://127.0.0.1:$RULES_ADMIN/metrics" | grep -E '^tether_requests_total' | head -2
