# Shared by the perf/ benchmarks: the scratch directory, ports, the nginx backend, CPU
# pinning, wrk runs. Sourcing it makes $DIR (removed on exit) and the PIDS array (helper
# processes, killed on exit).

DIR=$(mktemp -d "/tmp/tether-$(basename "$0" .sh)-XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

# need BIN...: stops with a hint when a tool is missing.
need() {
  for bin in "$@"; do
    command -v "$bin" >/dev/null || { echo "missing $bin (run deploy/install-deps.sh)"; exit 1; }
  done
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# On 2 cores, three busy processes fight for the CPU and the numbers swing by a third. The
# proxy under test gets the last core to itself; the backend and wrk share the others.
LAST=$(( $(nproc) - 1 ))
if [ "$LAST" -ge 1 ]; then
  PROXY_CPU="taskset -c $LAST"; LOAD_CPU="taskset -c 0-$(( LAST - 1 ))"
else
  PROXY_CPU=""; LOAD_CPU=""
fi

# start_backend PORT: nginx answering every request with a short body, logs off.
start_backend() {
  mkdir -p "$DIR/nginx-backend"
  cat > "$DIR/nginx-backend/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $DIR/nginx-backend/pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$1; location / { return 200 "hello from the backend\n"; } } }
CONF
  $LOAD_CPU nginx -c "$DIR/nginx-backend/nginx.conf" -p "$DIR/nginx-backend" 2>"$DIR/nb.log" &
  PIDS+=($!)
}

# wait_up PORT [HOST]: until a GET answers.
wait_up() {
  for _ in $(seq 1 50); do
    curl -sf -H "Host: ${2:-localhost}" "http://127.0.0.1:$1/" >/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1"; return 1
}

to_ms() {  # wrk latency "1.23ms" / "456.00us" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } }'
}

# run_wrk PORT [extra wrk args...]: prints "requests/s p99ms"; warns on errors. The request
# path is $WRK_PATH (default /).
run_wrk() {
  local port=$1; shift
  local out
  out=$($LOAD_CPU wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@" "http://127.0.0.1:$port${WRK_PATH:-/}")
  grep -E 'Non-2xx|Socket errors' <<<"$out" >&2 || true
  echo "$(awk '/^Requests\/sec/ {print $2}' <<<"$out") $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# write_haproxy FILE BIND BACKEND: an HAProxy config, 1 thread, keep-alive to the backend port;
# BIND is the rest of the frontend's bind line ("127.0.0.1:PORT [ssl crt ...]").
write_haproxy() {
  cat > "$1" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind $2
  default_backend be
backend be
  server b1 127.0.0.1:$3
CONF
}

# catchall_rules BACKEND: the rules block of a Tether bootstrap sending every host to one
# Service at 127.0.0.1:BACKEND.
catchall_rules() {
  cat <<CONF
rules:
  inline:
    - apiVersion: tether.dev/v1alpha1
      kind: Service
      metadata: { name: backend }
      spec: { endpoints: [ { address: 127.0.0.1:$1 } ] }
    - apiVersion: tether.dev/v1alpha1
      kind: Route
      metadata: { name: all }
      spec: { hosts: [ "*" ], rules: [ { backends: [ { service: backend } ] } ] }
CONF
}
