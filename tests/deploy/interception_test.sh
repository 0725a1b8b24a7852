#!/bin/bash
# Transparent interception, end to end, in two network namespaces this test makes itself:
#
#   app ns (10.231.$N.1, fd77:$N::1): Tether (dropping to uid 1337), tether-iptables applied, curl as the
#                         unmodified app client, app servers on 127.0.0.1:8080 and :9090
#   srv ns (10.231.$N.2, fd77:$N::2): servers on :8000 (Service "backend"), :8001 (unknown to Tether)
#
# Usage: interception_test.sh TETHER_BINARY. Exits 77 (skipped) only when the kernel
# refuses network namespaces.
set -u
TETHER=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT="$SRC/deploy/tether-iptables"
N=$((($$ % 200) + 20))
APP=tth-app-$$
SRV=tth-srv-$$
APP_IP=10.231.$N.1
SRV_IP=10.231.$N.2
APP_IP6=fd77:$N::1
SRV_IP6=fd77:$N::2
WORK=$(mktemp -d)
chmod 755 "$WORK"
FAILED=0
PIDS=""

cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
  ip netns del "$APP" 2>/dev/null
  ip netns del "$SRV" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

check() {  # check DESCRIPTION COMMAND...: runs the command, reports, counts failures
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAILED: $what"
    FAILED=$((FAILED + 1))
  fi
}
contains() { case "$1" in *"$2"*) return 0 ;; esac; echo "  got: $1"; return 1; }
equals() { [ "$1" = "$2" ] || { echo "  got: '$1', expected '$2'"; return 1; }; }
at_least() { [ "${1:-0}" -ge "$2" ] 2>/dev/null || { echo "  got: '$1', expected >= $2"; return 1; }; }

in_app() { ip netns exec "$APP" "$@"; }
in_srv() { ip netns exec "$SRV" "$@"; }

if ! ip netns add "$APP" 2>"$WORK/err"; then
  echo "SKIPPED: the kernel refuses network namespaces: $(cat "$WORK/err")"
  exit 77
fi
ip netns add "$SRV"
ip link add "a$$" type veth peer name "s$$"
ip link set "a$$" netns "$APP"
ip link set "s$$" netns "$SRV"
in_app ip addr add "$APP_IP/24" dev "a$$"
in_srv ip addr add "$SRV_IP/24" dev "s$$"
in_app ip addr add "$APP_IP6/64" dev "a$$" nodad
in_srv ip addr add "$SRV_IP6/64" dev "s$$" nodad
for ns in "$APP" "$SRV"; do
  ip netns exec "$ns" ip link set lo up
done
in_app ip link set "a$$" up
in_srv ip link set "s$$" up

wait_line() {  # wait_line FILE TEXT: until FILE holds TEXT (5 s)
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1"
  cat "$1"
  return 1
}

ip netns exec "$SRV" /usr/bin/python3 "$SRC/tests/deploy/echo_server.py" "$SRV_IP:8000" "$SRV_IP:8001" \
  "[$SRV_IP6]:8000" \
  >"$WORK/srv.log" 2>&1 &
PIDS="$PIDS $!"
# The app listens on loopback only: from outside, it is reachable only through Tether.
ip netns exec "$APP" /usr/bin/python3 "$SRC/tests/deploy/echo_server.py" 127.0.0.1:8080 127.0.0.1:9090 \
  >"$WORK/app.log" 2>&1 &
PIDS="$PIDS $!"
wait_line "$WORK/srv.log" ready || exit 1
wait_line "$WORK/app.log" ready || exit 1

write_config() {  # write_config UNKNOWN_DESTINATIONS
  cat >"$WORK/tether.yaml" <<EOF
node: { name: app-1, service: app }
runAs: { uid: 1337 }
admin: { address: 127.0.0.1:15000 }
workers: 1
drain: { timeout: 1s, grace: 0s }
listeners:
  - { name: outbound, address: 127.0.0.1:15001, direction: outbound, originalDestination: true,
      unknownDestinations: $1 }
  - { name: inbound, address: 0.0.0.0:15006, direction: inbound, originalDestination: true }
  - { name: outbound6, address: "[::1]:15001", direction: outbound, originalDestination: true,
      unknownDestinations: $1 }
  - { name: inbound6, address: "[::]:15006", direction: inbound, originalDestination: true }
localApp: { address: 127.0.0.1:8080 }
rules:
  inline:
    - apiVersion: tether.dev/v1alpha1
      kind: Service
      metadata: { name: backend }
      spec: { endpoints: [ { address: "$SRV_IP:8000" }, { address: "[$SRV_IP6]:8000" } ] }
    - apiVersion: tether.dev/v1alpha1
      kind: Route
      metadata: { name: named }
      spec:
        hosts: [ named.example ]
        rules: [ { backends: [ { service: backend } ] } ]
EOF
}

start_tether() {
  # Not through in_app: $! must be Tether itself (ip netns exec execs it in place).
  ip netns exec "$APP" "$TETHER" run -c "$WORK/tether.yaml" >"$WORK/tether.log" 2>&1 &
  TETHER_PID=$!
  PIDS="$PIDS $TETHER_PID"
  for _ in $(seq 1 100); do
    in_app curl -s -o /dev/null http://127.0.0.1:15000/live && return 0
    sleep 0.05
  done
  echo "tether did not start:"
  cat "$WORK/tether.log"
  exit 1
}

metric() {  # metric NAME LABEL_FRAGMENT: the sum of NAME's samples whose labels hold it
  in_app curl -s http://127.0.0.1:15000/metrics |
    awk -v n="$1" -v l="$2" 'index($0, n) == 1 && index($0, l) { s += $NF } END { print s + 0 }'
}

nat_rules() { in_app iptables-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }
nat_rules6() { in_app ip6tables-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }

write_config passthrough
start_tether
check "tether dropped to uid 1337" equals "$(ps -o uid= -p "$TETHER_PID" | tr -d ' ')" 1337

BEFORE=$(nat_rules)
BEFORE6=$(nat_rules6)
check "tether-iptables applies" in_app "$SCRIPT" --proxy-uid 1337 --ipv6
FIRST=$(nat_rules)
FIRST6=$(nat_rules6)
check "  (IPv6 rules installed)" contains "$FIRST6" "TETHER_OUTPUT -p tcp -j TETHER_REDIRECT"
check "tether-iptables run twice leaves the same rules" in_app "$SCRIPT" --proxy-uid 1337 --ipv6
check "  (compared)" equals "$(nat_rules)" "$FIRST"
check "  (IPv6 compared)" equals "$(nat_rules6)" "$FIRST6"

# Outbound: an unmodified client dials the server's address; Tether carries it.
OUT=$(in_app curl -s --max-time 5 "http://$SRV_IP:8000/x")
check "outbound to a Service's endpoint is captured and routed" contains "$OUT" "port=8000"
check "  (via tether)" contains "$OUT" "via=1.1 tether"
check "  (counted as service backend, route original_destination)" at_least \
  "$(metric tether_requests_total 'service="backend"')" 1
check "  (route label)" at_least "$(metric tether_requests_total 'route="original_destination"')" 1

OUT=$(in_app curl -s --max-time 5 -H "Host: named.example" "http://$SRV_IP:8001/")
check "a Host that names a route wins over the original destination" contains "$OUT" "port=8000"

OUT=$(in_app curl -s --max-time 5 "http://$SRV_IP:8001/y")
check "an unknown destination is passed through" contains "$OUT" "port=8001"
check "  (via tether)" contains "$OUT" "via=1.1 tether"
check "  (counted as passthrough)" at_least "$(metric tether_requests_total 'service="passthrough"')" 1

# Inbound: a client outside dials the app's address and port; Tether delivers to that port.
OUT=$(in_srv curl -s --max-time 5 "http://$APP_IP:9090/")
check "inbound to port 9090 is captured and delivered to the app's port 9090" contains "$OUT" "port=9090"
check "  (via tether)" contains "$OUT" "via=1.1 tether"
OUT=$(in_srv curl -s --max-time 5 "http://$APP_IP:8080/")
check "inbound to port 8080 reaches the app's 8080" contains "$OUT" "port=8080"
check "  (counted inbound)" at_least "$(metric tether_requests_total 'direction="inbound"')" 2

# IPv6: the same through ip6tables and IP6T_SO_ORIGINAL_DST.
OUT=$(in_app curl -s --max-time 5 -g "http://[$SRV_IP6]:8000/v6")
check "IPv6 outbound is captured and routed to the Service" contains "$OUT" "port=8000"
check "  (via tether)" contains "$OUT" "via=1.1 tether"
OUT=$(in_srv curl -s --max-time 5 -g "http://[$APP_IP6]:9090/")
check "IPv6 inbound is captured and delivered to the app's port 9090" contains "$OUT" "port=9090"
check "  (via tether)" contains "$OUT" "via=1.1 tether"

# No loop: Tether's own upstream connections were exempted by owner, and it accepted
# exactly the seven connections the clients made.
UID_HITS=$(in_app iptables -t nat -L TETHER_OUTPUT -v -n -x | awk '/owner UID match 1337/ { print $1 }')
check "tether's own connections matched the uid exemption" at_least "$UID_HITS" 3
check "tether accepted exactly the clients' 7 connections (no redirect loop)" equals \
  "$(metric tether_downstream_connections_total '')" 7

check "tether-iptables --cleanup" in_app "$SCRIPT" --cleanup --ipv6
check "cleanup restores the nat table" equals "$(nat_rules)" "$BEFORE"
check "cleanup restores the IPv6 nat table" equals "$(nat_rules6)" "$BEFORE6"
OUT=$(in_app curl -s --max-time 5 "http://$SRV_IP:8001/")
check "after cleanup the client goes direct" contains "$OUT" "via="
check "  (not via tether)" equals "$(echo "$OUT" | grep -c tether)" 0

stop_tether() {  # a clean exit (under ASan: no leak, no error report)
  kill "$TETHER_PID"
  wait "$TETHER_PID"
  check "tether exits cleanly on SIGTERM" equals "$?" 0
}

# unknownDestinations: deny refuses what no route or Service knows.
stop_tether
write_config deny
start_tether
in_app "$SCRIPT" >/dev/null
HEADERS=$(in_app curl -s --max-time 5 -D - -o /dev/null "http://$SRV_IP:8001/")
check "unknownDestinations: deny answers 502" contains "$HEADERS" "HTTP/1.1 502"
check "  (x-tether-reason: no_route)" contains "$HEADERS" "x-tether-reason: no_route"
OUT=$(in_app curl -s --max-time 5 "http://$SRV_IP:8000/")
check "  and known services still route" contains "$OUT" "port=8000"
in_app "$SCRIPT" --cleanup >/dev/null
stop_tether

if [ "$FAILED" -ne 0 ]; then
  echo "--- tether log"
  cat "$WORK/tether.log"
  echo "$FAILED check(s) failed"
  exit 1
fi
echo "all checks passed"
