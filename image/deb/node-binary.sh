#!/usr/bin/env bash
# Prints the directory of the node-linux-<arch> npm package (Node 24) for a Debian arch.
# The host's own arch comes from node_modules (npm ci installed it); the other arch is fetched once
# with `npm pack` into .cache/ (the npm registry is the only network this needs) and checked
# against the integrity hash pinned in package-lock.json before it is used.
set -euo pipefail
arch=${1:?amd64|arm64}
repo=$(cd "$(dirname "$0")/../.." && pwd)
case "$arch" in amd64) n=x64 ;; arm64) n=arm64 ;; *) echo "node-binary: unknown arch $arch" >&2; exit 2 ;; esac
pkg="node-linux-$n"
if [ -x "$repo/node_modules/$pkg/bin/node" ]; then echo "$repo/node_modules/$pkg"; exit 0; fi
node=$("$repo/scripts/node-path")
read -r version integrity < <("$node" -e '
  const l = require(process.argv[1]).packages["node_modules/" + process.argv[2]];
  if (!l) { console.error("package-lock.json pins no " + process.argv[2]); process.exit(1); }
  console.log(l.version, l.integrity);' "$repo/package-lock.json" "$pkg")
cache="$repo/.cache/$pkg-$version"
if [ ! -x "$cache/package/bin/node" ]; then
  mkdir -p "$cache"
  tgz=$(cd "$cache" && npm pack --silent "$pkg@$version")
  got="sha512-$(openssl dgst -sha512 -binary "$cache/$tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then echo "node-binary: $tgz integrity $got does not match package-lock.json" >&2; rm -rf "$cache"; exit 1; fi
  tar -xzf "$cache/$tgz" -C "$cache"
fi
echo "$cache/package"
