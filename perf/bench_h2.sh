#!/bin/bash
# HTTP/2 front ends: h2load -c4 -m32 small GETs through Tether and its peers to the same
# HTTP/1.1 nginx backend, 1 worker each, same session, rounds alternating; medians reported.
#   1. h2c (prior knowledge): Tether vs nghttpx.
#   2. h2 over TLS (termination, ALPN): Tether vs nghttpx vs HAProxy.
# Each run also counts the CPU time the front end spent per request (user + system of the
# process and its children, from /proc): rounds on this kind of shared VM swing by a third,
# the CPU per request much less. Never part of CI.
#
# usage: perf/bench_h2.sh [path/to/tether]   env: ROUNDS (7), REQUESTS (200000)
set -euo pipefail
TETHER=$(readlink -f "${1:-build/tether}")
ROUNDS=${ROUNDS:-7}
REQUESTS=${REQUESTS:-200000}
. "$(dirname "$0")/lib.sh"
need h2load nginx haproxy nghttpx openssl curl
BACKEND=$(free_port); TH2C=$(free_port); TTLS=$(free_port); TADMIN=$(free_port)
XH2C=$(free_port); XTLS=$(free_port); HTLS=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/key.pem" -out "$DIR/cert.pem" -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cat "$DIR/cert.pem" "$DIR/key.pem" > "$DIR/both.pem"

cat > "$DIR/tether.yaml" <<CONF
admin: { address: 127.0.0.1:$TADMIN }
workers: 1
listeners:
  - { name: h2c, address: 127.0.0.1:$TH2C, direction: outbound }
  - { name: tls, address: 127.0.0.1:$TTLS, direction: outbound, tls: { certFile: $DIR/cert.pem, keyFile: $DIR/key.pem } }
CONF
catchall_rules "$BACKEND" >> "$DIR/tether.yaml"
cat > "$DIR/nghttpx-h2c.conf" <<CONF
frontend=127.0.0.1,$XH2C;no-tls
backend=127.0.0.1,$BACKEND
workers=1
backend-keep-alive-timeout=60s
CONF
cat > "$DIR/nghttpx-tls.conf" <<CONF
frontend=127.0.0.1,$XTLS
backend=127.0.0.1,$BACKEND
workers=1
private-key-file=$DIR/key.pem
certificate-file=$DIR/cert.pem
CONF
write_haproxy "$DIR/haproxy.cfg" "127.0.0.1:$HTLS ssl crt $DIR/both.pem alpn h2,http/1.1" "$BACKEND"

start_backend "$BACKEND"
declare -A PID
$PROXY_CPU "$TETHER" run -c "$DIR/tether.yaml" >"$DIR/tether.log" 2>&1 & PIDS+=($!)
PID[tether_h2c]=$!; PID[tether_tls]=$!
$PROXY_CPU nghttpx --conf="$DIR/nghttpx-h2c.conf" --errorlog-file="$DIR/x1.log" & PIDS+=($!)
PID[nghttpx_h2c]=$!
$PROXY_CPU nghttpx --conf="$DIR/nghttpx-tls.conf" --errorlog-file="$DIR/x2.log" & PIDS+=($!)
PID[nghttpx_tls]=$!
$PROXY_CPU haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 & PIDS+=($!)
PID[haproxy_tls]=$!
wait_up "$BACKEND"; wait_up "$TH2C"; wait_up "$XH2C"
sleep 0.5

# ticks PID: user + system clock ticks of the process and its children (nghttpx's worker).
ticks() {
  for p in "$1" $(pgrep -P "$1" || true); do awk '{print $14 + $15}' "/proc/$p/stat"; done |
    awk '{s += $1} END {print s}'
}
HZ=$(getconf CLK_TCK)

# h2run NAME URL: one h2load run; appends its requests/s to R[NAME] and the front end's CPU
# microseconds per request to C[NAME] (warns when not every request succeeded).
h2run() {
  local out before after
  before=$(ticks "${PID[$1]}")
  out=$($LOAD_CPU h2load -c4 -m32 -n "$REQUESTS" "$2" 2>&1)
  after=$(ticks "${PID[$1]}")
  grep -q "$REQUESTS succeeded" <<<"$out" || echo "warning: $2: $(grep 'requests:' <<<"$out")" >&2
  R[$1]+=" $(awk '/^finished in/ {print $4}' <<<"$out")"
  C[$1]+=" $(awk -v t=$((after - before)) -v hz="$HZ" -v n="$REQUESTS" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}

declare -A R C
for name in tether_h2c nghttpx_h2c tether_tls nghttpx_tls haproxy_tls; do R[$name]=""; C[$name]=""; done
for _ in $(seq 1 "$ROUNDS"); do
  h2run tether_h2c "http://127.0.0.1:$TH2C/"
  h2run nghttpx_h2c "http://127.0.0.1:$XH2C/"
  h2run tether_tls "https://127.0.0.1:$TTLS/"
  h2run nghttpx_tls "https://127.0.0.1:$XTLS/"
  h2run haproxy_tls "https://127.0.0.1:$HTLS/"
done

echo "h2load -c4 -m32 -n $REQUESTS, 1 worker each, nginx HTTP/1.1 backend, median of $ROUNDS rounds"
printf '%-14s %12s %16s   %s\n' "front end" "requests/s" "CPU us/request" "requests/s by round"
for name in tether_h2c nghttpx_h2c tether_tls nghttpx_tls haproxy_tls; do
  printf '%-14s %12.0f %16.2f   %s\n' "$name" "$(median "${R[$name]}")" "$(median "${C[$name]}")" "${R[$name]}"
done
th2c=$(median "${R[tether_h2c]}"); xh2c=$(median "${R[nghttpx_h2c]}")
ttls=$(median "${R[tether_tls]}"); xtls=$(median "${R[nghttpx_tls]}"); htls=$(median "${R[haproxy_tls]}")
best=$(awk -v a="$xtls" -v b="$htls" 'BEGIN { print (a > b) ? a : b }')
awk -v t="$th2c" -v x="$xh2c" 'BEGIN { printf "h2c: Tether / nghttpx = %.2fx (target >= 1.0x)\n", t / x }'
awk -v t="$ttls" -v b="$best" 'BEGIN { printf "h2 over TLS: Tether / best of nghttpx, HAProxy = %.2fx (target >= 1.0x)\n", t / b }'
cth2c=$(median "${C[tether_h2c]}"); cxh2c=$(median "${C[nghttpx_h2c]}")
awk -v t="$cth2c" -v x="$cxh2c" 'BEGIN { printf "CPU per request, h2c: nghttpx / Tether = %.2fx (above 1: Tether spends less)\n", x / t }'
cttls=$(median "${C[tether_tls]}"); cxtls=$(median "${C[nghttpx_tls]}"); chtls=$(median "${C[haproxy_tls]}")
awk -v t="$cttls" -v x="$cxtls" -v h="$chtls" 'BEGIN { b = (x < h) ? x : h; printf "CPU per request, h2 over TLS: least of nghttpx, HAProxy / Tether = %.2fx\n", b / t }'
