#!/usr/bin/env bash
# The practice bundle an ICB engineer carries back to the appliance (docs/image.md, runbook):
# the device certificate signed from the box's CSR, the ICB CA, and the practice's config.
#
#   provisioning/practice.sh PKI_DIR DEVICE_ID ODS_CODE "Practice name" BROKER_URL [BROKER_URL...]
#     -> PKI_DIR/practices/DEVICE_ID.tar  (config.yaml, device.crt, ca.crt; no private key)
#
# Install it on the box with: surgery-edge enrol install DEVICE_ID.tar
set -euo pipefail
pki=${1:-}; id=${2:-}; ods=${3:-}; name=${4:-}
[ -n "$pki" ] && [ -n "$id" ] && [ -n "$ods" ] && [ -n "$name" ] && [ $# -ge 5 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
shift 4
[[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "bad device id: $id" >&2; exit 2; }
[[ "$ods" =~ ^[A-Z0-9]{3,10}$ ]] || { echo "bad ODS code: $ods" >&2; exit 2; }
[[ "$name" != *'"'* && "$name" != *'\'* ]] || { echo "practice name must not contain quotes or backslashes" >&2; exit 2; }
crt="$pki/devices/$id.crt"
[ -f "$crt" ] || { echo "no certificate $crt: sign the box's CSR first (pki.sh sign-csr)" >&2; exit 2; }
brokers=""
for b in "$@"; do
  [[ "$b" =~ ^mqtts://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] || { echo "broker must be mqtts://host[:port]: $b" >&2; exit 2; }
  brokers="$brokers    - \"$b\"
"
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/config.yaml" <<YAML
version: 1
site:
  deviceId: "$id"
  practiceName: "$name"
  odsCode: "$ods"
enrolment:
  required: true
status:
  setup:
    required: true
telemetry:
  enabled: true
  brokers:
$brokers  caPath: /etc/surgery-edge/mqtt/ca.crt
  certPath: /etc/surgery-edge/mqtt/device.crt
  keyPath: /etc/surgery-edge/mqtt/device.key
YAML
cp "$crt" "$work/device.crt"; cp "$pki/ca.crt" "$work/ca.crt"
mkdir -p "$pki/practices"
tar --format=ustar --owner=0 --group=0 --numeric-owner -C "$work" -cf "$pki/practices/$id.tar" config.yaml device.crt ca.crt
echo "$pki/practices/$id.tar"
