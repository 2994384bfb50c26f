#!/usr/bin/env bash
# Build and sign an update bundle (docs/updates.md): a ustar archive whose members are, in this
# order, manifest.json, manifest.sig (Ed25519 over manifest.json's exact bytes) and then either
# payload (format 1: the slot's whole squashfs root) or, with --delta-store, index.caibx (format 2:
# a casync blob index of that root; its chunks go into the store directory, which is published
# beside the bundle). The device verifies the signature before it accepts a payload or index byte.
#
#   image/bundle/make-bundle.sh --key KEY.pem --version 0.2.0 --arch amd64 --payload root.squashfs --out FILE.seb
#   image/bundle/make-bundle.sh ... --out DIR/FILE.delta.seb --delta-store DIR/surgery-edge-amd64.castr
#
# Needs only bash, coreutils, openssl 3 and GNU tar (and casync for --delta-store): it runs on the
# ICB's offline signing machine.
set -euo pipefail
key= version= arch= payload= out= created= store=
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --created-at) created=$2; shift 2 ;;
    --delta-store) store=$2; shift 2 ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] && [ -n "$version" ] && [ -n "$arch" ] && [ -n "$payload" ] && [ -n "$out" ] || { sed -n '2,13p' "$0" >&2; exit 2; }
[[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] || { echo "make-bundle: version must be SemVer: $version" >&2; exit 2; }
case "$arch" in amd64|arm64) ;; *) echo "make-bundle: arch must be amd64 or arm64" >&2; exit 2 ;; esac
[ -f "$payload" ] && [ -s "$payload" ] || { echo "make-bundle: no payload file $payload" >&2; exit 2; }
grep -q 'PRIVATE KEY' "$key" || { echo "make-bundle: $key is not a private key" >&2; exit 2; }
created=${created:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
keyid=$(openssl pkey -in "$key" -pubout -outform DER | sha256sum | cut -c1-16)
size=$(stat -c %s "$payload")
sha=$(sha256sum "$payload" | cut -d' ' -f1)
if [ -n "$store" ]; then
  # Format 2. The device looks for the store beside the bundle, under the name the manifest signs.
  sname=$(basename "$store")
  [[ "$sname" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.castr$ ]] || { echo "make-bundle: the chunk store's name must end in .castr: $sname" >&2; exit 2; }
  mkdir -p "$store"
  [ "$(realpath "$(dirname "$store")")" = "$(realpath "$(dirname "$out")")" ] \
    || { echo "make-bundle: put the chunk store beside the bundle (same directory as $out): devices look for it there" >&2; exit 2; }
  command -v casync >/dev/null || { echo "make-bundle: --delta-store needs casync (apt install casync)" >&2; exit 1; }
  # zstd chunks named by SHA-512/256: what the device's chunk proxy checks (agent/src/update/delta.ts).
  casync make --store="$store" --compression=zstd --digest=sha512-256 "$work/index.caibx" "$payload"
  isize=$(stat -c %s "$work/index.caibx")
  isha=$(sha256sum "$work/index.caibx" | cut -d' ' -f1)
  printf '{"format":2,"product":"surgery-edge","kind":"rootfs","version":"%s","arch":"%s","createdAt":"%s","keyId":"%s","index":{"name":"index.caibx","size":%s,"sha256":"%s"},"image":{"size":%s,"sha256":"%s","fsType":"squashfs"},"store":"%s"}\n' \
    "$version" "$arch" "$created" "$keyid" "$isize" "$isha" "$size" "$sha" "$sname" >"$work/manifest.json"
  openssl pkeyutl -sign -inkey "$key" -rawin -in "$work/manifest.json" -out "$work/manifest.sig"
  tar --format=ustar --owner=0 --group=0 --numeric-owner --mode=0644 --mtime="$created" \
    -C "$work" -cf "$out.tmp" manifest.json manifest.sig index.caibx
  mv "$out.tmp" "$out"
  echo "delta bundle $out: version $version arch $arch keyId $keyid image $size bytes sha256 $sha index $isize bytes store $store"
  exit 0
fi
printf '{"format":1,"product":"surgery-edge","kind":"rootfs","version":"%s","arch":"%s","createdAt":"%s","keyId":"%s","payload":{"name":"payload","size":%s,"sha256":"%s","fsType":"squashfs"}}\n' \
  "$version" "$arch" "$created" "$keyid" "$size" "$sha" >"$work/manifest.json"
openssl pkeyutl -sign -inkey "$key" -rawin -in "$work/manifest.json" -out "$work/manifest.sig"
ln -s "$(realpath "$payload")" "$work/payload"
# Fixed order, fixed owner/mode/mtime: the same inputs give the same bundle bytes.
tar --format=ustar --dereference --owner=0 --group=0 --numeric-owner --mode=0644 --mtime="$created" \
  -C "$work" -cf "$out.tmp" manifest.json manifest.sig payload
mv "$out.tmp" "$out"
echo "bundle $out: version $version arch $arch keyId $keyid payload $size bytes sha256 $sha"
