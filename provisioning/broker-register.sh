#!/usr/bin/env bash
# Register an enrolled device with the ICB's broker (mosquitto 2.0 with the dynamic-security plugin,
# docs/fleet.md "Deployment and security"): a role confining it to <prefix>/<id>/# and a client for
# its certificate subject CN=<id>. Until then the broker refuses everything the device asks for.
#
#   provisioning/broker-register.sh PKI_DIR DEVICE_ID mqtts://HOST[:PORT]
#
# Uses the fleet identity PKI_DIR/fleet.{crt,key} (the only one the broker lets administer devices)
# and mosquitto_pub (Debian mosquitto-clients). Idempotent: registering twice changes nothing.
set -euo pipefail
pki=${1:-}; id=${2:-}; url=${3:-}
[ -n "$pki" ] && [ -n "$id" ] && [ -n "$url" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
[[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "not a device id: $id" >&2; exit 2; }
case "${id,,}" in fleet|fleet-*|fleet_*|fleet.*) echo "reserved identity, not a device: $id" >&2; exit 2 ;; esac
[[ "$url" =~ ^mqtts://([A-Za-z0-9.-]+)(:([0-9]+))?$ ]] || { echo "broker must be mqtts://host[:port]: $url" >&2; exit 2; }
host=${BASH_REMATCH[1]}; port=${BASH_REMATCH[3]:-8883}
prefix=${SE_MQTT_PREFIX:-surgery-edge/v1}
for f in "$pki/ca.crt" "$pki/fleet.crt" "$pki/fleet.key"; do
  [ -f "$f" ] || { echo "missing $f (the fleet identity: provisioning/pki.sh fleet $pki)" >&2; exit 2; }
done
t="$prefix/$id/#"
acl() { printf '{"acltype":"%s","topic":"%s","priority":0,"allow":true}' "$1" "$t"; }
cmds=$(printf '{"commands":[{"command":"createRole","rolename":"device:%s","acls":[%s,%s,%s,%s]},{"command":"createClient","username":"CN=%s","roles":[{"rolename":"device:%s"}]}]}' \
  "$id" "$(acl publishClientSend)" "$(acl publishClientReceive)" "$(acl subscribePattern)" "$(acl unsubscribePattern)" "$id" "$id")
mosquitto_pub -h "$host" -p "$port" --cafile "$pki/ca.crt" --cert "$pki/fleet.crt" --key "$pki/fleet.key" -V mqttv5 -q 1 \
  -t '$CONTROL/dynamic-security/v1' -m "$cmds"
echo "registered $id on $url"
