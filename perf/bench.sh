#!/bin/bash
# Proxy throughput and latency: Tether against nginx, HAProxy, nghttpx and a direct
# connection, all in one session on this machine, 1 worker each, keep-alive to the same
# nginx backend, access logs off. wrk -t1 -c32 small GETs, peers run in alternation over
# several rounds; the median of the rounds is reported. Never part of CI.
#
# "tether-raw" is the same Tether with http.pathNormalization off: the ratio between the two
# is what normalizing every path costs. Requests ask for a realistic path with a query.
#
# usage: perf/bench.sh [path/to/tether]   env: ROUNDS (3), DURATION (5s), CONNS (32),
#                                              WRK_PATH (/api/v1/items/42?user=7&page=2)
set -euo pipefail
TETHER=${1:-build/tether}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
export WRK_PATH=${WRK_PATH:-/api/v1/items/42?user=7&page=2}
TETHER=$(readlink -f "$TETHER")
. "$(dirname "$0")/lib.sh"
need wrk nginx haproxy nghttpx curl
BACKEND=$(free_port); NGINX=$(free_port); HAPROXY=$(free_port); NGHTTPX=$(free_port)
TPORT=$(free_port); TADMIN=$(free_port); RPORT=$(free_port); RADMIN=$(free_port)

mkdir -p "$DIR/nginx-proxy"
cat > "$DIR/nginx-proxy/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $DIR/nginx-proxy/pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
  server { listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
write_haproxy "$DIR/haproxy.cfg" "127.0.0.1:$HAPROXY" "$BACKEND"
cat > "$DIR/tether.yaml" <<CONF
admin: { address: 127.0.0.1:$TADMIN }
workers: 1
listeners:
  - { name: outbound, address: 127.0.0.1:$TPORT, direction: outbound }
CONF
catchall_rules "$BACKEND" >> "$DIR/tether.yaml"
sed -e "s/127.0.0.1:$TADMIN/127.0.0.1:$RADMIN/" -e "s/127.0.0.1:$TPORT/127.0.0.1:$RPORT/" \
  "$DIR/tether.yaml" > "$DIR/tether-raw.yaml"
echo "http: { pathNormalization: { enabled: false } }" >> "$DIR/tether-raw.yaml"

start_backend "$BACKEND"
$PROXY_CPU nginx -c "$DIR/nginx-proxy/nginx.conf" -p "$DIR/nginx-proxy" 2>"$DIR/np.log" & PIDS+=($!)
$PROXY_CPU haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 & PIDS+=($!)
$PROXY_CPU nghttpx --frontend="127.0.0.1,$NGHTTPX;no-tls" --backend="127.0.0.1,$BACKEND" --workers=1 \
  --no-via --no-server-rewrite --no-add-x-forwarded-proto --errorlog-file="$DIR/nghttpx.log" \
  --accesslog-file=/dev/null >/dev/null 2>&1 & PIDS+=($!)
$PROXY_CPU "$TETHER" run -c "$DIR/tether.yaml" --log-level warn 2>"$DIR/tether.log" & TETHER_PID=$!; PIDS+=($TETHER_PID)
$PROXY_CPU "$TETHER" run -c "$DIR/tether-raw.yaml" --log-level warn 2>"$DIR/tether-raw.log" & PIDS+=($!)

declare -A PORT=([direct]=$BACKEND [nginx]=$NGINX [haproxy]=$HAPROXY [nghttpx]=$NGHTTPX [tether]=$TPORT [tether-raw]=$RPORT)
NAMES=(direct nginx haproxy nghttpx tether tether-raw)
for n in "${NAMES[@]}"; do wait_up "${PORT[$n]}"; done

sleep 0.5
IDLE_RSS=$(awk '/VmRSS/ {print $2}' /proc/$TETHER_PID/status)

declare -A RPS P99
for r in $(seq 1 "$ROUNDS"); do
  for n in "${NAMES[@]}"; do
    read -r rps p99 <<<"$(run_wrk "${PORT[$n]}")"
    RPS[$n]="${RPS[$n]:-} $rps"; P99[$n]="${P99[$n]:-} $p99"
  done
done

echo
echo "wrk -t1 -c$CONNS -d$DURATION $WRK_PATH, $ROUNDS rounds in alternation, median; 1 worker each; $(nproc) cores"
echo "proxies pinned to CPU $LAST; backend (nginx) and wrk pinned to the rest"
printf '%-10s %12s %10s %14s %12s\n' peer "requests/s" "p99 ms" "tether/peer" "p99 ratio"
T_RPS=$(median "${RPS[tether]}"); T_P99=$(median "${P99[tether]}")
for n in "${NAMES[@]}"; do
  rps=$(median "${RPS[$n]}"); p99=$(median "${P99[$n]}")
  printf '%-10s %12.0f %10.3f %14.2f %12.2f\n' "$n" "$rps" "$p99" \
    "$(awk -v a="$T_RPS" -v b="$rps" 'BEGIN{print a/b}')" "$(awk -v a="$T_P99" -v b="$p99" 'BEGIN{print a/b}')"
done
BEST=$(printf '%s\n%s\n' "$(median "${RPS[nginx]}")" "$(median "${RPS[haproxy]}")" | sort -g | tail -1)
echo
echo "tether / best of nginx and haproxy: $(awk -v a="$T_RPS" -v b="$BEST" 'BEGIN{printf "%.2f", a/b}')x (target >= 1.00)"
echo "tether / tether-raw (path normalization's cost): $(awk -v a="$T_RPS" -v b="$(median "${RPS[tether-raw]}")" 'BEGIN{printf "%.3f", a/b}')x (target >= 0.98)"
echo "tether idle RSS, 1 worker: ${IDLE_RSS} KiB (target <= 10240)"
curl -s "http://127.0.0.1:$TADMIN/metrics" | grep -E '^tether_requests_total' | head -3
