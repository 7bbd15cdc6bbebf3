#!/usr/bin/env bash
# Makes a throwaway CA and one key + certificate per named node, for the demo and the tests.
# Nothing it writes is ever committed; every run makes a new CA.
#
#   make-certs.sh OUT_DIR NAME[:SAN,SAN...] ...
#
# Each NAME gets OUT_DIR/NAME.key and OUT_DIR/NAME.crt (subject CN=NAME, usable as TLS server and
# client certificate). SANs default to DNS:NAME, DNS:localhost, IP:127.0.0.1; give your own after a
# colon, e.g. `gw-b:DNS:gw-b.example,IP:10.0.0.5`. OUT_DIR/ca.crt is the trust anchor.
# Set CA_NAME to name the CA (default "xcai demo CA <date>"); set DAYS for the validity (default 2).
set -euo pipefail
out=${1:?usage: make-certs.sh OUT_DIR NAME[:SANS] ...}
shift
mkdir -p "$out"
chmod 700 "$out"
days=${DAYS:-2}
ca_name=${CA_NAME:-"xcai demo CA $(date -u +%Y%m%dT%H%M%SZ)"}
umask 077

if [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
    -subj "/O=xcai test/CN=$ca_name" -keyout "$out/ca.key" -out "$out/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for spec in "$@"; do
  name=${spec%%:*}
  if [ "$spec" != "$name" ]; then sans=${spec#*:}; else sans="DNS:$name,DNS:localhost,IP:127.0.0.1"; fi
  ext=$(mktemp)
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$sans
EOF
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -subj "/O=xcai test/CN=$name" -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$out/$name.crt" 2>/dev/null
  rm -f "$out/$name.csr" "$ext"
done
chmod 644 "$out"/*.crt
echo "$out"
