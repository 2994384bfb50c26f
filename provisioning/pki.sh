#!/usr/bin/env bash
# Small CA and device-certificate enrolment for the MQTT broker (see docs/mqtt-contract.md).
#
#   provisioning/pki.sh init   DIR                 create DIR/ca.key + DIR/ca.crt (10 years)
#   provisioning/pki.sh server DIR HOST [IP...]    broker cert DIR/server.{key,crt} with SANs
#   provisioning/pki.sh device DIR DEVICE_ID       client cert DIR/devices/ID.{key,crt}, CN = ID
#   provisioning/pki.sh sign-csr DIR CSR [ID]      sign a CSR made on the appliance (`surgery-edge enrol csr`): DIR/devices/ID.crt
#
# The broker runs with require_certificate + use_identity_as_username, so the CN *is* the MQTT
# username and the ACL pattern `<prefix>/%u/#` confines each device to its own topics. Keys are
# EC P-256 (small, fast on a Pi) and never leave the machine they are generated on in production:
# run `device` on the appliance at first boot and have the ICB CA sign a CSR instead when available.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,8p' "$0" >&2; exit 2; }
mkdir -p "$dir"
umask 077
days_ca=3650; days_leaf=825

newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

case "$cmd" in
  init)
    [ -f "$dir/ca.key" ] || newkey "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days $days_ca -subj "/CN=surgery-edge test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
    chmod 644 "$dir/ca.crt" ;;
  server)
    host=${3:?host}; shift 3
    san="DNS:$host"; for ip in "$@"; do san="$san,IP:$ip"; done
    newkey "$dir/server.key"
    openssl req -new -key "$dir/server.key" -subj "/CN=$host" -out "$dir/server.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days $days_leaf -sha256 \
      -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
    rm -f "$dir/server.csr" "$dir/server.ext"; chmod 644 "$dir/server.crt" "$dir/server.key" ;;
  device)
    id=${3:?device id}
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "bad device id: $id" >&2; exit 2; }
    mkdir -p "$dir/devices"
    newkey "$dir/devices/$id.key"
    openssl req -new -key "$dir/devices/$id.key" -subj "/CN=$id" -out "$dir/devices/$id.csr"
    printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$dir/devices/$id.ext"
    openssl x509 -req -in "$dir/devices/$id.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days $days_leaf -sha256 \
      -extfile "$dir/devices/$id.ext" -out "$dir/devices/$id.crt" 2>/dev/null
    rm -f "$dir/devices/$id.csr" "$dir/devices/$id.ext" ;;
  sign-csr)
    # The private key never leaves the appliance: only its CSR comes here. Check the CSR's own
    # signature and that its CN is a device id (and the one expected, when given).
    csr=${3:?csr file}; want=${4:-}
    openssl req -in "$csr" -noout -verify 2>/dev/null || { echo "CSR signature does not verify: $csr" >&2; exit 2; }
    id=$(openssl req -in "$csr" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "CSR CN is not a device id: $id" >&2; exit 2; }
    [ -z "$want" ] || [ "$id" = "$want" ] || { echo "CSR is for $id, expected $want" >&2; exit 2; }
    mkdir -p "$dir/devices"
    printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$dir/devices/$id.ext"
    # Extensions come from the CA's file, never copied from the CSR.
    openssl x509 -req -in "$csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days $days_leaf -sha256 \
      -extfile "$dir/devices/$id.ext" -out "$dir/devices/$id.crt" 2>/dev/null
    rm -f "$dir/devices/$id.ext"; chmod 644 "$dir/devices/$id.crt"
    echo "$dir/devices/$id.crt" ;;
  *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
