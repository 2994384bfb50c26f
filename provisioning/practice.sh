#!/usr/bin/env bash
# The practice bundle an ICB engineer carries back to the appliance (docs/image.md, runbook):
# the device certificate signed from the box's CSR, the ICB CA, and the practice's config.
#
#   provisioning/practice.sh PKI_DIR DEVICE_ID ODS_CODE "Practice name" BROKER_URL [BROKER_URL...]
#     -> PKI_DIR/practices/DEVICE_ID.tar  (config.yaml, device.crt, ca.crt, backup.key; no device key)
#
# backup.key is the practice's off-box backup key (restic repository password): made once per
# practice (ODS code) in PKI_DIR/backup-keys/ and reused for every box of that practice, so a
# replacement box can restore the old box's backups. PKI_DIR/backup-keys/ is the ICB's escrow copy:
# keep it in the ICB vault with the CA. The bundle is therefore secret: wipe the stick after use.
#
# Install it on the box with: surgery-edge enrol install DEVICE_ID.tar
#                      and:   surgery-edge backup install-key DEVICE_ID.tar
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
bkey="$pki/backup-keys/$ods.key"
if [ ! -f "$bkey" ]; then
  (umask 077; mkdir -p "$pki/backup-keys"; openssl rand -base64 32 | tr -d '\n=' | tr '+/' '-_' >"$bkey.tmp"; echo >>"$bkey.tmp"; mv "$bkey.tmp" "$bkey")
fi
(umask 077; cp "$bkey" "$work/backup.key")
mkdir -p "$pki/practices"
(umask 077; tar --format=ustar --owner=0 --group=0 --numeric-owner -C "$work" -cf "$pki/practices/$id.tar" config.yaml device.crt ca.crt backup.key)
echo "$pki/practices/$id.tar"
