#!/usr/bin/env bash
# Build surgery-edge_<version>_<arch>.deb with dpkg-deb from a staging tree, offline:
# the agent bundle, its production node_modules, the Node 24 binary, the systemd unit,
# /usr/bin/surgery-edge, maintainer scripts and docs.
#
#   image/deb/build-deb.sh amd64|arm64 OUTDIR      (after make dist)
set -euo pipefail
arch=${1:?amd64|arm64}; out=${2:?out dir}
repo=$(cd "$(dirname "$0")/../.." && pwd)
node=$("$repo/scripts/node-path")
version=$("$node" -p 'require(process.argv[1]).version' "$repo/package.json")
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
root="$stage/root"; mkdir -p "$root/DEBIAN"
"$repo/image/deb/stage-app.sh" "$arch" "$root" >/dev/null

install -D -m 0644 "$repo/image/systemd/surgery-edge.service" "$root/lib/systemd/system/surgery-edge.service"
install -d -m 0755 "$root/usr/bin"
cat >"$root/usr/bin/surgery-edge" <<'SH'
#!/bin/sh
exec /opt/surgery-edge/bin/node /opt/surgery-edge/dist/surgery-edge.mjs "$@"
SH
chmod 0755 "$root/usr/bin/surgery-edge"
doc="$root/usr/share/doc/surgery-edge"
install -d -m 0755 "$doc"
printf 'surgery-edge %s: continuity appliance agent for GP surgeries.\nSee docs/image.md and docs/operator-guide.md in the source.\n' "$version" >"$doc/README"
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: surgery-edge\n\nFiles: *\nCopyright: 2026 surgery-edge contributors\nLicense: proprietary\n Bundled npm packages keep their own licences (see /opt/surgery-edge/node_modules/*/LICENSE*).\n' >"$doc/copyright"
date=$(git -C "$repo" log -1 --format=%aD 2>/dev/null || date -R)
printf 'surgery-edge (%s) stable; urgency=medium\n\n  * Build of %s.\n\n -- surgery-edge build <build@surgery-edge.invalid>  %s\n' \
  "$version" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$date" | gzip -9n >"$doc/changelog.gz"
install -D -m 0644 "$repo/image/deb/debian/lintian-overrides" "$root/usr/share/lintian/overrides/surgery-edge"
install -m 0755 "$repo/image/deb/debian/postinst" "$repo/image/deb/debian/prerm" "$repo/image/deb/debian/postrm" "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CTL
Package: surgery-edge
Version: $version
Architecture: $arch
Maintainer: surgery-edge build <build@surgery-edge.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1, openssl, iproute2, nftables, conntrack, iputils-ping, systemd
Recommends: modemmanager, mosquitto-clients, kamailio, network-manager, tpm2-tools, restic, openssh-client
Section: net
Priority: optional
Homepage: https://surgery-edge.nhs.invalid/
Description: continuity appliance agent for GP surgeries
 Keeps a practice online over 4G when its line fails, keeps today's records
 viewable offline, shows the state on a LAN status page and reports to the
 ICB's fleet manager over MQTT. Ships its own Node 24 runtime in /opt.
CTL
mkdir -p "$out"
deb="$out/surgery-edge_${version}_${arch}.deb"
# DEB_COMPRESS=none makes a quick build for tests; releases use xz.
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$deb" >/dev/null
echo "$deb"
