#!/usr/bin/env bash
# Small CA and enrolment for the MQTT broker (see docs/mqtt-contract.md "Broker ACL and provisioning").
#
#   provisioning/pki.sh init     DIR                create DIR/ca.key + DIR/ca.crt (10 years)
#   provisioning/pki.sh server   DIR HOST [IP...]   broker cert DIR/server.{key,crt} with SANs
#   provisioning/pki.sh fleet    DIR                the fleet manager's identity DIR/fleet.{key,crt}
#   provisioning/pki.sh device   DIR DEVICE_ID      client cert DIR/devices/ID.{key,crt}, subject CN=ID
#   provisioning/pki.sh sign-csr DIR CSR [ID]       sign a CSR made on the appliance (`surgery-edge enrol csr`): DIR/devices/ID.crt
#
# The broker runs with require_certificate + use_subject_as_username: a device's MQTT user name is
# "CN=<id>", the fleet's is "CN=fleet,OU=fleet-manager,O=surgery-edge". A device certificate is
# only ever issued with the subject CN=<id> alone, and never for a reserved id, so no device
# certificate can carry the fleet's user name (and with it the right to read and command every
# device). Keys are EC P-256 and are never overwritten: an existing key is a live identity.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
usage() { sed -n '4,8p' "$0" >&2; exit 2; }
[ -n "$cmd" ] && [ -n "$dir" ] || usage
umask 077
days_ca=3650; days_leaf=825
FLEET_SUBJECT="/O=surgery-edge/OU=fleet-manager/CN=fleet"

newkey() {
  # noclobber: never replace a key, even when two enrolments race for the same id.
  if [ -e "$1" ]; then echo "refusing to overwrite the existing key $1 (an enrolled identity; move it away first if it is really retired)" >&2; exit 3; fi
  (set -o noclobber; openssl ecparam -name prime256v1 -genkey -noout >"$1" 2>/dev/null) || { echo "cannot create $1" >&2; exit 3; }
}

# A device id: the pattern the fleet and the agent accept, and none of the reserved identities
# (compared case-insensitively: "Fleet" would be a confusing look-alike in logs and the dashboard).
check_id() {
  local id=$1 what=$2
  [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "$what is not a device id (A-Z a-z 0-9 _ . -, 1-64, starting with a letter or digit): $id" >&2; exit 2; }
  case "${id,,}" in
    fleet|fleet-*|fleet_*|fleet.*|server|ca|admin|root|localhost) echo "$what is a reserved identity, not a device id: $id" >&2; exit 2 ;;
  esac
}

leaf() { # leaf CSR CERT EKU
  printf 'extendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$3" >"$2.ext"
  # Extensions come from the CA's file, never copied from the CSR.
  openssl x509 -req -in "$1" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days $days_leaf -sha256 \
    -extfile "$2.ext" -out "$2" 2>/dev/null
  rm -f "$2.ext"
}

case "$cmd" in
  init)
    mkdir -p "$dir"
    [ -f "$dir/ca.key" ] || newkey "$dir/ca.key"
    [ -f "$dir/ca.crt" ] || openssl req -x509 -new -key "$dir/ca.key" -sha256 -days $days_ca -subj "/CN=surgery-edge test CA" \
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
  fleet)
    newkey "$dir/fleet.key"
    openssl req -new -key "$dir/fleet.key" -subj "$FLEET_SUBJECT" -out "$dir/fleet.csr"
    leaf "$dir/fleet.csr" "$dir/fleet.crt" clientAuth
    rm -f "$dir/fleet.csr"; chmod 644 "$dir/fleet.crt"
    echo "$dir/fleet.crt" ;;
  device)
    id=${3:-}; [ -n "$id" ] || usage
    check_id "$id" "device id"
    mkdir -p "$dir/devices"
    [ ! -e "$dir/devices/$id.crt" ] || { echo "device $id already has a certificate ($dir/devices/$id.crt); refusing to re-issue" >&2; exit 3; }
    newkey "$dir/devices/$id.key"
    openssl req -new -key "$dir/devices/$id.key" -subj "/CN=$id" -out "$dir/devices/$id.csr"
    leaf "$dir/devices/$id.csr" "$dir/devices/$id.crt" clientAuth
    rm -f "$dir/devices/$id.csr"
    echo "$dir/devices/$id.crt" ;;
  sign-csr)
    # The private key never leaves the appliance: only its CSR comes here. Check the CSR's own
    # signature, that its subject is exactly CN=<device id> (nothing else: the broker's user name is
    # the whole subject), and that it is the device expected, when given.
    csr=${3:-}; want=${4:-}; [ -n "$csr" ] || usage
    [ -z "$want" ] || check_id "$want" "expected id"
    openssl req -in "$csr" -noout -verify 2>/dev/null || { echo "CSR signature does not verify: $csr" >&2; exit 2; }
    subject=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    [[ "$subject" =~ ^CN=([^,+=\\]*)$ ]] || { echo "CSR subject must be CN=<device id> and nothing else: $subject" >&2; exit 2; }
    id=${BASH_REMATCH[1]}
    check_id "$id" "CSR CN"
    [ -z "$want" ] || [ "$id" = "$want" ] || { echo "CSR is for $id, expected $want" >&2; exit 2; }
    # Without an expected id the CA must not replace a device's certificate with one for another key.
    [ -n "$want" ] || [ ! -e "$dir/devices/$id.crt" ] || { echo "device $id already has a certificate; name the device (sign-csr DIR CSR $id) to re-issue it" >&2; exit 3; }
    mkdir -p "$dir/devices"
    leaf "$csr" "$dir/devices/$id.crt.new" clientAuth
    mv -f "$dir/devices/$id.crt.new" "$dir/devices/$id.crt"; chmod 644 "$dir/devices/$id.crt"
    echo "$dir/devices/$id.crt" ;;
  *) usage ;;
esac
