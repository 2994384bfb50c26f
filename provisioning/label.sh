#!/usr/bin/env bash
# A label for a box's lid (docs/install-icb-engineer.md): its claim code, as text or SVG with a QR
# code. The QR opens the fleet's "Claim a box" page with the code filled in, so the engineer scans
# it with a phone signed in to the dashboard instead of typing.
#
#   provisioning/label.sh CLAIM_CODE FLEET_URL [text|svg] [FINGERPRINT]   label on stdout
#     CLAIM_CODE  XXXX-XXXX as shown on the box's status page
#     FLEET_URL   the dashboard, e.g. https://fleet.icb.example
#
# The SVG needs qrencode (Debian qrencode); text needs nothing. A claim code is single-use and
# expires (24 h by default): print the label when the box is first powered on, at the bench.
set -euo pipefail
code=${1:-}; url=${2:-}; fmt=${3:-text}; fp=${4:-}
[ -n "$code" ] && [ -n "$url" ] || { sed -n '2,11p' "$0" >&2; exit 2; }
code=$(printf '%s' "$code" | tr 'a-z' 'A-Z' | tr -d ' ')
[[ "$code" =~ ^[0-9A-HJKMNP-TV-Z]{4}-?[0-9A-HJKMNP-TV-Z]{4}$ ]] || { echo "not a claim code (XXXX-XXXX): $code" >&2; exit 2; }
[ "${code:4:1}" = "-" ] || code="${code:0:4}-${code:4:4}"
[[ "$url" =~ ^https://[A-Za-z0-9.:-]+(/[A-Za-z0-9._/-]*)?$ ]] || { echo "fleet URL must be https://host[:port][/path]: $url" >&2; exit 2; }
link="${url%/}/claim?code=$code"
case "$fmt" in
  text)
    printf '+--------------------------------------+\n'
    printf '| surgery-edge appliance               |\n'
    printf '| Claim code:  %-23s |\n' "$code"
    [ -z "$fp" ] || printf '| Box key:     %-23s |\n' "$fp"
    printf '| ICB engineer: fleet > Claim a box    |\n'
    printf '+--------------------------------------+\n'
    printf '%s\n' "$link" ;;
  svg)
    command -v qrencode >/dev/null || { echo "qrencode is not installed (apt-get install qrencode)" >&2; exit 2; }
    qr=$(qrencode -t SVG -l M -m 1 -s 4 -o - "$link" | sed -n '/<svg/,$p' | sed -E '1s/ (width|height)="[^"]*"//g; 1s/<svg /<svg x="8" y="8" width="112" height="112" /')
    cat <<SVG
<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="360" height="128" viewBox="0 0 360 128" font-family="monospace">
<rect width="360" height="128" fill="#fff" stroke="#000"/>
$qr
<text x="132" y="30" font-size="13">surgery-edge appliance</text>
<text x="132" y="62" font-size="24" font-weight="bold">$code</text>
<text x="132" y="86" font-size="11">${fp:+Box key $fp}</text>
<text x="132" y="108" font-size="10">Scan, or fleet <text x="132" y="108" font-size="11">Scan, or type at fleet &gt; Claim a box</text>gt; Claim a box</text>
</svg>
SVG
    ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
