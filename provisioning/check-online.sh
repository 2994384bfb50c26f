#!/usr/bin/env bash
# Runbook's last step (docs/image.md): is the enrolled box on the ICB broker? Reads the device's
# retained `state` topic (docs/mqtt-contract.md) with the fleet identity and waits for its birth.
#
#   provisioning/check-online.sh PKI_DIR DEVICE_ID mqtts://HOST[:PORT] [SECONDS]
#     exit 0 and prints the state when {"online":true,...}; 1 when offline or nothing within SECONDS (60)
#
# Needs PKI_DIR/fleet.{crt,key} (provisioning/pki.sh fleet PKI_DIR, on the ICB side)
# and mosquitto_sub (Debian mosquitto-clients).
set -euo pipefail
pki=${1:-}; id=${2:-}; url=${3:-}; wait=${4:-60}
[ -n "$pki" ] && [ -n "$id" ] && [ -n "$url" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
[[ "$url" =~ ^mqtts://([A-Za-z0-9.-]+)(:([0-9]+))?$ ]] || { echo "broker must be mqtts://host[:port]: $url" >&2; exit 2; }
host=${BASH_REMATCH[1]}; port=${BASH_REMATCH[3]:-8883}
prefix=${SE_MQTT_PREFIX:-surgery-edge/v1}
for f in "$pki/ca.crt" "$pki/fleet.crt" "$pki/fleet.key"; do
  [ -f "$f" ] || { echo "missing $f (the fleet identity: provisioning/pki.sh fleet $pki)" >&2; exit 2; }
done
end=$(($(date +%s) + wait))
while :; do
  # Retained: the last birth (or the Will, when the box went away) arrives at once.
  state=$(mosquitto_sub -h "$host" -p "$port" --cafile "$pki/ca.crt" --cert "$pki/fleet.crt" --key "$pki/fleet.key" \
    -t "$prefix/$id/state" -C 1 -W 5 -V mqttv5 2>/dev/null || true)
  if [[ "$state" == *'"online":true'* ]]; then echo "$state"; exit 0; fi
  [ "$(date +%s)" -lt "$end" ] || { echo "$id is not online on $url (last state: ${state:-none})" >&2; exit 1; }
  sleep 2
done
