#!/bin/sh
# Packs a release tarball: the binary and everything needed to deploy it.
#   deploy/make-dist.sh BUILD_DIR OUT_DIR  ->  OUT_DIR/tether-VERSION-linux-ARCH.tar.gz
set -eu
BUILD=${1:-build}
OUT=${2:-dist}
SRC=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$("$BUILD/tether" version | awk '{ print $2 }')
NAME="tether-$VERSION-linux-$(uname -m)"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
D="$STAGE/$NAME"
mkdir -p "$D/bin" "$D/systemd" "$D/kubernetes" "$D/grafana" "$D/docs" "$OUT"
install -m 755 "$BUILD/tether" "$D/bin/tether"
strip "$D/bin/tether" 2>/dev/null || true
install -m 755 "$SRC/deploy/tether-iptables" "$SRC/deploy/tether-certs.sh" "$D/bin/"
install -m 644 "$SRC/deploy/systemd/tether.service" "$D/systemd/"
install -m 644 "$SRC"/deploy/kubernetes/*.yaml "$D/kubernetes/"
install -m 644 "$SRC/deploy/grafana/tether-dashboard.json" "$D/grafana/"
install -m 644 "$SRC/deploy/Dockerfile" "$D/"
install -m 644 "$SRC/README.md" "$D/"
install -m 644 "$SRC"/docs/*.md "$D/docs/"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "$OUT/$NAME.tar.gz"
