#!/usr/bin/env bash
# Make an enrolment stick for one box (docs/image.md, runbook). The appliance has no login: it
# reads this stick when it is plugged in (or present at boot), writes DEVICE_ID.csr to it and keeps
# the private key; later the same stick brings the signed practice bundle back.
#
#   provisioning/enrol-stick.sh format TARGET DEVICE_ID   FAT filesystem labelled SE-ENROL + device-id
#                                                         (TARGET: a whole USB stick /dev/sdX, or an image file)
#   provisioning/enrol-stick.sh get-csr TARGET DIR        copy DEVICE_ID.csr and result.txt off the stick into DIR
#   provisioning/enrol-stick.sh put TARGET BUNDLE.tar     copy the practice bundle onto the stick
#   provisioning/enrol-stick.sh result TARGET             print what the box last wrote (result.txt)
#
# Works without mounting (mtools), so the same commands run on a stick or on a test image file.
set -euo pipefail
cmd=${1:-}; target=${2:-}
[ -n "$cmd" ] && [ -n "$target" ] || { sed -n '2,12p' "$0" >&2; exit 2; }
export MTOOLS_SKIP_CHECK=1
case "$cmd" in
  format)
    id=${3:?device id}
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || { echo "bad device id: $id" >&2; exit 2; }
    if [ -b "$target" ]; then mkfs.vfat -I -n SE-ENROL "$target" >/dev/null
    else rm -f "$target"; mkfs.vfat -C -n SE-ENROL "$target" 8192 >/dev/null; fi
    printf '%s\n' "$id" | mcopy -i "$target" - ::/device-id
    echo "$target: enrolment stick for $id" ;;
  get-csr)
    dir=${3:?dir}; mkdir -p "$dir"
    id=$(mtype -i "$target" ::/device-id | tr -d ' \r\n')
    mcopy -n -o -i "$target" ::/result.txt "$dir/" 2>/dev/null || true
    mcopy -n -o -i "$target" "::/$id.csr" "$dir/" || { echo "no $id.csr on the stick yet: plug it into the box and wait for the LED/status page" >&2; exit 1; }
    echo "$dir/$id.csr" ;;
  put)
    tar=${3:?bundle}
    tar -tf "$tar" | grep -x config.yaml >/dev/null || { echo "$tar is not a practice bundle (provisioning/practice.sh)" >&2; exit 2; }
    mcopy -o -i "$target" "$tar" "::/$(basename "$tar")"
    echo "$(basename "$tar") on $target: plug it into the box" ;;
  result)
    mtype -i "$target" ::/result.txt ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
