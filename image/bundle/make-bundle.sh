#!/usr/bin/env bash
# Build and sign an update bundle (format 1, docs/updates.md): a ustar archive whose members are,
# in this order, manifest.json, manifest.sig (Ed25519 over manifest.json's exact bytes) and payload
# (the slot's squashfs root). The device verifies the signature before it accepts a payload byte.
#
#   image/bundle/make-bundle.sh --key KEY.pem --version 0.2.0 --arch amd64 --payload root.squashfs --out FILE.seb
#
# Needs only bash, coreutils, openssl 3 and GNU tar: it runs on the ICB's offline signing machine.
set -euo pipefail
key= version= arch= payload= out= created=
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --created-at) created=$2; shift 2 ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] && [ -n "$version" ] && [ -n "$arch" ] && [ -n "$payload" ] && [ -n "$out" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
[[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] || { echo "make-bundle: version must be SemVer: $version" >&2; exit 2; }
case "$arch" in amd64|arm64) ;; *) echo "make-bundle: arch must be amd64 or arm64" >&2; exit 2 ;; esac
[ -f "$payload" ] && [ -s "$payload" ] || { echo "make-bundle: no payload file $payload" >&2; exit 2; }
grep -q 'PRIVATE KEY' "$key" || { echo "make-bundle: $key is not a private key" >&2; exit 2; }
created=${created:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
keyid=$(openssl pkey -in "$key" -pubout -outform DER | sha256sum | cut -c1-16)
size=$(stat -c %s "$payload")
sha=$(sha256sum "$payload" | cut -d' ' -f1)
printf '{"format":1,"product":"surgery-edge","kind":"rootfs","version":"%s","arch":"%s","createdAt":"%s","keyId":"%s","payload":{"name":"payload","size":%s,"sha256":"%s","fsType":"squashfs"}}\n' \
  "$version" "$arch" "$created" "$keyid" "$size" "$sha" >"$work/manifest.json"
openssl pkeyutl -sign -inkey "$key" -rawin -in "$work/manifest.json" -out "$work/manifest.sig"
ln -s "$(realpath "$payload")" "$work/payload"
# Fixed order, fixed owner/mode/mtime: the same inputs give the same bundle bytes.
tar --format=ustar --dereference --owner=0 --group=0 --numeric-owner --mode=0644 --mtime="$created" \
  -C "$work" -cf "$out.tmp" manifest.json manifest.sig payload
mv "$out.tmp" "$out"
echo "bundle $out: version $version arch $arch keyId $keyid payload $size bytes sha256 $sha"
