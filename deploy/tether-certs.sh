#!/bin/sh
# A development CA and sidecar certificates for mutual TLS between Tether sidecars, with
# openssl only. Each sidecar certificate carries its identity as a URI SAN (a SPIFFE ID,
# spiffe://<trust-domain>/ns/<namespace>/sa/<service>), which the receiving sidecar reads
# after verifying the chain (listener tls.caFile) and maps to a caller (HmacAuth peers).
# For production, issue from your real CA (cert-manager, Vault, SPIRE) with the same SAN.
#
#   tether-certs.sh ca DIR [DAYS]
#       DIR/ca.crt and DIR/ca.key (ECDSA P-256, DAYS days, default 365)
#   tether-certs.sh issue DIR NAME SPIFFE_ID [DNS_NAME...] [-- DAYS]
#       DIR/NAME.crt and DIR/NAME.key, signed by DIR/ca: the SPIFFE ID as URI SAN, plus
#       DNS names (for the TLS server name check), default 30 days; DAYS 0 makes a
#       certificate that is already expired (for tests)
set -eu

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
mkdir -p "$dir"
case "$cmd" in
  ca)
    days=${1:-365}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" \
      -subj "/O=tether/CN=tether development CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
    chmod 600 "$dir/ca.key"
    ;;
  issue)
    [ $# -ge 2 ] || usage
    name=$1 id=$2 days=30
    shift 2
    san="URI:$id"
    while [ $# -gt 0 ]; do
      if [ "$1" = "--" ]; then days=$2; break; fi
      san="$san,DNS:$1"
      shift
    done
    case "$id" in spiffe://*) ;; *) echo "identity must be a spiffe:// URI" >&2; exit 2 ;; esac
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/O=tether/CN=$name" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
      "$san" > "$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -days "$days" -out "$dir/$name.crt" -extfile "$dir/$name.ext" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    chmod 600 "$dir/$name.key"
    ;;
  *) usage ;;
esac
