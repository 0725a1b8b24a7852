#!/bin/sh
# The README's first command ends here: Tether on its embedded default (docs/design.md) in
# front of a demo app on 127.0.0.1:8080, a few requests through it, and where to look.
set -e
TETHER=${1:-build/tether}
DEMO_DIR=$(mktemp -d /tmp/tether-demo-XXXXXX)
cleanup() {
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
  rm -rf "$DEMO_DIR"
}
trap cleanup EXIT
# Ctrl-C reaches tether from the terminal by itself (it then drains and exits); a TERM sent
# to this script is passed on once.
trap 'wait "$TETHER_PID"' INT
trap 'kill -TERM "$TETHER_PID" 2>/dev/null; wait "$TETHER_PID"' TERM

# The demo app: a static site served by Python's http.server on 8080.
mkdir -p "$DEMO_DIR/site"
printf 'hello from the demo app behind tether\n' > "$DEMO_DIR/site/index.html"
printf 'ok\n' > "$DEMO_DIR/site/healthz"
python3 -m http.server 8080 --bind 127.0.0.1 --directory "$DEMO_DIR/site" \
  > "$DEMO_DIR/app.log" 2>&1 &
APP_PID=$!
for i in $(seq 1 50); do
  curl -sf http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  sleep 0.1
done

"$TETHER" run &
TETHER_PID=$!
for i in $(seq 1 50); do
  curl -sf http://127.0.0.1:15000/ready >/dev/null 2>&1 && break
  sleep 0.1
done

echo
echo "== tether is up: admin 127.0.0.1:15000, outbound 127.0.0.1:15001, inbound 0.0.0.0:15006 -> app 127.0.0.1:8080"
echo
echo "== three requests through the inbound listener:"
for path in / /healthz /missing; do
  printf '$ curl -i http://127.0.0.1:15006%s\n' "$path"
  curl -s -i "http://127.0.0.1:15006$path" | sed -n '1p;/^x-tether/p'
done
echo
echo "== an outbound request for a host no Route names gets a local reply with its reason:"
echo '$ curl -i -H "Host: ratings" http://127.0.0.1:15001/'
curl -s -i -H 'Host: ratings' http://127.0.0.1:15001/ | sed -n '1p;/^x-tether/p'
echo
echo "== what the proxy counted (curl http://127.0.0.1:15000/metrics):"
curl -s http://127.0.0.1:15000/metrics | grep -E '^tether_requests_total|^tether_upstream_requests_total'
echo
echo "== endpoints (curl http://127.0.0.1:15000/clusters):"
curl -s http://127.0.0.1:15000/clusters
echo
echo "Tether keeps running; try the curls above, /config_dump, /rules. Ctrl-C drains and stops it."
wait "$TETHER_PID"
