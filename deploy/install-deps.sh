#!/bin/sh
# Installs every Debian 12 package Tether needs to build, test and benchmark.
# Idempotent: does nothing (and needs no network) when everything is present.
set -e
PKGS="cmake g++ make pkg-config clang-format clang libfuzzer-14-dev libuv1-dev node-llhttp libnghttp2-dev libyaml-cpp-dev libssl-dev libre2-dev
prometheus-cpp-dev catch2 libhiredis-dev redis-server curl nghttp2-client nghttp2-server wrk nginx-light haproxy
nghttp2-proxy prometheus python3 python3-grpcio python3-h2 python3-yaml iptables iproute2 procps systemd"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# The Debian prometheus/nginx/haproxy packages start system services we do not want
# holding ports during tests; they are only used as binaries.
for svc in prometheus nginx haproxy redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
exit 0
