#!/usr/bin/env bash
# Stage the agent as it runs on a box: DEST/opt/surgery-edge/{bin/node, dist/surgery-edge.mjs,
# package.json, node_modules/} for one Debian arch, from `make dist` and `npm ci`'s node_modules,
# offline. Native addons keep only their linux-<arch> prebuilt; sources and other platforms go.
set -euo pipefail
arch=${1:?amd64|arm64}; dest=${2:?dest dir}
repo=$(cd "$(dirname "$0")/../.." && pwd)
case "$arch" in amd64) n=x64 ;; arm64) n=arm64 ;; *) echo "stage-app: unknown arch $arch" >&2; exit 2 ;; esac
node=$("$repo/scripts/node-path")
[ -f "$repo/dist/surgery-edge.mjs" ] || { echo "stage-app: no dist/surgery-edge.mjs: run make dist" >&2; exit 1; }
app="$dest/opt/surgery-edge"
rm -rf "$app"; mkdir -p "$app/bin" "$app/dist" "$app/node_modules"
install -m 0755 "$("$repo/image/deb/node-binary.sh" "$arch")/bin/node" "$app/bin/node"
# Debug symbols are 18 MB of the 126 MB binary; the host strip only knows its own arch, so a
# cross-arch build keeps them (squashfs compresses the image anyway).
strip --strip-unneeded "$app/bin/node" 2>/dev/null || true
install -m 0644 "$repo/dist/surgery-edge.mjs" "$app/dist/surgery-edge.mjs"
# version.ts reads ../package.json next to the bundle: name and version are all it needs.
"$node" -e 'const p = require(process.argv[1]); process.stdout.write(JSON.stringify({ name: p.name, version: p.version, private: true, type: "module" }, null, 2) + "\n")' \
  "$repo/package.json" >"$app/package.json"
mapfile -t mods < <("$node" "$repo/image/deb/prod-modules.mjs" "$repo")
# Only what runs: no docs, tests, benchmarks, type definitions, source maps, dotfiles or scripts.
tar -C "$repo" -cf - --exclude='*.md' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.map' --exclude='.*' \
  --exclude='test' --exclude='tests' --exclude='benchmark' --exclude='benchmarks' --exclude='integration' --exclude='docs' \
  --exclude='example' --exclude='examples' --exclude='*.html' --exclude='*.sh' --exclude='eslint.config.*' --exclude='tsconfig*.json' \
  "${mods[@]}" | tar -C "$app" -xf -
# npm leaves stray executable bits; nothing under node_modules is run directly.
find "$app/node_modules" -type f -exec chmod 0644 {} +
for p in better-sqlite3 better-sqlite3-multiple-ciphers; do
  d="$app/node_modules/$p"
  [ -d "$d" ] || continue
  rm -rf "$d/deps" "$d/src" "$d/build" "$d/binding.gyp"
  find "$d/prebuilds" -type f ! -name "linux-$n.node" -delete
  [ -f "$d/prebuilds/linux-$n.node" ] || { echo "stage-app: $p has no prebuilt linux-$n.node" >&2; exit 1; }
  strip --strip-unneeded "$d/prebuilds/linux-$n.node" 2>/dev/null || true
done
# Every file readable, nothing writable by others, whatever umask npm ran under.
chmod -R u+rwX,go+rX,go-w "$app"
echo "$app"
