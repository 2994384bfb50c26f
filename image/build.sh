#!/usr/bin/env bash
# Build the appliance disk image (docs/image.md): Debian 12 by mmdebstrap from the package mirror
# only, the agent from its .deb, a squashfs root for slot A, GRUB (EFI) choosing the slot from a
# grubenv, and an ext4 data partition. No loop devices, no mounts: every filesystem is made from a
# directory (mkfs.ext4 -d, mkfs.vfat + mtools, mksquashfs) and the disk is assembled with sfdisk + dd.
#
#   image/build.sh --arch amd64|arm64 --deb PKG.deb --out DIR [--keys DIR] [--sign-key KEY.pem]
#                  [--icb-ca CA.crt --claim-url https://HOST[:PORT]]
#                  [--seed-config FILE] [--slot-mib 1024] [--data-mib 256]
#
# --icb-ca / --claim-url: what a box needs to claim itself (docs/image.md, "Claiming"): the ICB CA
# (public certificate only; the box trusts nothing else for the fleet's HTTPS) goes into the signed
# root as /usr/share/surgery-edge/icb-ca.crt, and the fleet's enrolment URL into the seed config.
# Nothing per box: every box makes its own key and claim code at first boot. Without --icb-ca a
# development ICB CA is made in DIR/dev-icb (its key stays there; never ship such an image) and
# the claim URL defaults to https://10.0.2.100:8443, where make test-image's fleet answers.
# Outputs in DIR: surgery-edge-<version>-<arch>.img (raw, sparse), .root.sqfs (the slot image: an
# update bundle's payload), .seb and .delta.seb + surgery-edge-<arch>.castr/ (the delta bundle and
# its chunk store) when signing, and build-<arch>.json (the figures).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
arch= deb= out= keys= sign= seed= icb_ca= claim_url= slot_mib=1024 data_mib=256
mirror=${SE_MIRROR:-http://deb.debian.org/debian}
security=${SE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --deb) deb=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --sign-key) sign=$2; shift 2 ;;
    --seed-config) seed=$2; shift 2 ;;
    --icb-ca) icb_ca=$2; shift 2 ;;
    --claim-url) claim_url=$2; shift 2 ;;
    --slot-mib) slot_mib=$2; shift 2 ;;
    --data-mib) data_mib=$2; shift 2 ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$arch" ] && [ -n "$deb" ] && [ -n "$out" ] || { sed -n '2,20p' "$0" >&2; exit 2; }
case "$arch" in
  amd64) grubplat=x86_64-efi; efiname=BOOTX64.EFI; console='console=tty0 console=ttyS0,115200' ;;
  arm64) grubplat=arm64-efi; efiname=BOOTAA64.EFI; console='console=tty0 console=ttyAMA0,115200' ;;
  *) echo "build: arch must be amd64 or arm64" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "build: mmdebstrap --mode=root needs root" >&2; exit 1; }
for t in mmdebstrap mksquashfs casync mkfs.ext4 mkfs.vfat mcopy sfdisk grub-mkimage grub-editenv; do
  command -v "$t" >/dev/null || { echo "build: $t missing (scripts/packages/image.txt)" >&2; exit 1; }
done
deb=$(realpath "$deb"); mkdir -p "$out"; out=$(realpath "$out")
node=$("$repo/scripts/node-path")
version=$(dpkg-deb --field "$deb" Version)
[ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || { echo "build: $deb is not for $arch" >&2; exit 1; }
started=$(date +%s)

# A foreign-arch root runs its maintainer scripts through qemu-user: register it with binfmt_misc.
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi

# Update keys the image trusts. Without --keys a development key is made (and said loudly):
# bundles for such an image can be signed by anyone holding out/dev-keys, never ship it.
if [ -z "$keys" ]; then
  keys="$out/dev-keys"
  [ -f "$keys/update-key.pub.pem" ] || "$repo/provisioning/update-key.sh" init "$keys" >/dev/null
  echo "build: WARNING: trusting the development update key in $keys (pass --keys for a release)" >&2
  [ -n "$sign" ] || sign="$keys/update-key.pem"
fi
# The ICB CA and the fleet's claim URL. Only a CA certificate may go in: never a key, never a leaf.
if [ -z "$icb_ca" ]; then
  "$repo/provisioning/pki.sh" init "$out/dev-icb" >/dev/null
  icb_ca="$out/dev-icb/ca.crt"
  [ -n "$claim_url" ] || claim_url=https://10.0.2.100:8443
  echo "build: WARNING: boxes claim through $claim_url trusting the development ICB CA in $out/dev-icb (pass --icb-ca for a release)" >&2
fi
[ -n "$claim_url" ] || { echo "build: --icb-ca needs --claim-url (the fleet's enrolment endpoint, https://host[:port])" >&2; exit 2; }
[[ "$claim_url" =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] || { echo "build: --claim-url must be https://host[:port]: $claim_url" >&2; exit 2; }
[ -f "$icb_ca" ] || { echo "build: no ICB CA certificate at $icb_ca" >&2; exit 2; }
if grep -q 'PRIVATE KEY' "$icb_ca"; then echo "build: refusing to put a private key into the image ($icb_ca)" >&2; exit 1; fi
openssl x509 -in "$icb_ca" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE' \
  || { echo "build: $icb_ca is not a CA certificate (basicConstraints CA:TRUE)" >&2; exit 2; }
icb_ca=$(realpath "$icb_ca")
trusted=$(mktemp -d)
if compgen -G "$keys/*.pub.pem" >/dev/null; then cp "$keys"/*.pub.pem "$trusted/"; else cp "$keys"/*.pem "$trusted/"; fi
if grep -l 'PRIVATE KEY' "$trusted"/*.pem >/dev/null 2>&1; then echo "build: refusing to put a private key into the image" >&2; exit 1; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/se-image.XXXXXX")
trap 'rm -rf "$work" "$trusted"' EXIT
name="surgery-edge-$version-$arch"

# 1. The root filesystem. Documentation, man pages, locales and drivers a headless appliance never
#    loads are left out at unpack time (dpkg path-exclude): smaller slots, smaller update bundles.
excl=()
for p in '/usr/share/man/*' '/usr/share/doc/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*' \
  '/usr/lib/modules/*/kernel/sound/*' '/usr/lib/modules/*/kernel/drivers/gpu/*' '/usr/lib/modules/*/kernel/drivers/media/*' \
  '/usr/lib/modules/*/kernel/drivers/infiniband/*' '/usr/lib/modules/*/kernel/drivers/isdn/*' '/usr/lib/modules/*/kernel/drivers/bluetooth/*' \
  '/usr/lib/modules/*/kernel/net/bluetooth/*' '/usr/lib/modules/*/kernel/drivers/iio/*' '/usr/lib/modules/*/kernel/drivers/thunderbolt/*' \
  '/usr/lib/modules/*/kernel/drivers/scsi/qla2xxx/*' '/usr/lib/modules/*/kernel/drivers/scsi/lpfc/*' '/usr/lib/modules/*/kernel/drivers/net/ethernet/mellanox/*'; do
  excl+=("--dpkgopt=path-exclude=$p")
done
excl+=("--dpkgopt=path-include=/usr/share/doc/*/copyright" "--dpkgopt=path-include=/usr/share/locale/locale.alias")
pkgs=systemd,systemd-sysv,systemd-timesyncd,udev,dbus,kmod,initramfs-tools,linux-image-$arch,grub-efi-$arch-bin
pkgs=$pkgs,iproute2,nftables,conntrack,iputils-ping,openssl,ca-certificates,util-linux,fdisk,e2fsprogs
pkgs=$pkgs,mosquitto-clients,kamailio,modemmanager,tpm2-tools,libstdc++6
# Off-box backup (agent/src/backup): restic, and ssh for its SFTP targets.
pkgs=$pkgs,restic,openssh-client
# Delta updates (bundle format 2, agent/src/update/delta.ts): casync rebuilds the inactive slot.
pkgs=$pkgs,casync
# Inert on hardware (it binds to a virtio-serial port only a hypervisor provides); in qemu it lets
# make test-image ask systemd and the agent how the boot went.
pkgs=$pkgs,qemu-guest-agent
release="version=$version arch=$arch built=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
SE_REPO=$repo SE_KEYS_DIR=$trusted SE_ICB_CA=$icb_ca SE_RELEASE=$release SE_INITRAMFS_SECONDS=$work/initramfs-seconds \
  mmdebstrap --mode=root --variant=minbase --architectures="$arch" --include="$pkgs" --include="$deb" "${excl[@]}" \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --essential-hook="\"$repo/image/initramfs-once.sh\" defer \"\$1\"" \
  --customize-hook="\"$repo/image/customize.sh\" \"\$1\"" \
  bookworm "$work/root" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
  >"$work/mmdebstrap.log" 2>&1 || { cp "$work/mmdebstrap.log" "$out/mmdebstrap-$arch.log"; tail -40 "$work/mmdebstrap.log" >&2; exit 1; }
cp "$work/mmdebstrap.log" "$out/mmdebstrap-$arch.log"
t_root=$(date +%s)
t_initramfs=$(cat "$work/initramfs-seconds" 2>/dev/null || echo null)

# 2. Slot A: the squashfs of that root, reproducible (fixed timestamps, no fragments) so that the
#    next release's delta bundle reuses the chunks of everything that did not change.
"$repo/image/mkroot-sqfs.sh" "$work/root" "$out/$name.root.sqfs"
sqfs_bytes=$(stat -c %s "$out/$name.root.sqfs")
[ "$sqfs_bytes" -le $((slot_mib * 1024 * 1024)) ] || { echo "build: squashfs ($sqfs_bytes bytes) does not fit a ${slot_mib} MiB slot" >&2; exit 1; }
t_sqfs=$(date +%s)

# 3. The EFI loader: GRUB with every module it needs built in and an early config that hands over
#    to grub.cfg on the boot partition.
mods="part_gpt fat ext2 squash4 xzio gzio normal linux search search_label configfile loadenv test echo regexp true sleep reboot halt serial terminal all_video efi_gop"
[ "$arch" = amd64 ] && mods="$mods efi_uga"
grub-mkimage -d "$work/root/usr/lib/grub/$grubplat" -O "$grubplat" -o "$work/$efiname" -c "$repo/image/grub/early.cfg" -p /EFI/BOOT $mods
mkfs.vfat -C -n SE-ESP "$work/esp.img" 32768 >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/$efiname" "::/EFI/BOOT/$efiname"

# 4. The boot partition: grub.cfg and the grubenv (slot a committed, no try).
mkdir -p "$work/boot"
sed "s|@CONSOLE@|$console|" "$repo/image/grub/grub.cfg" >"$work/boot/grub.cfg"
grub-editenv "$work/boot/grubenv" create
grub-editenv "$work/boot/grubenv" set se_active=a se_try=0 se_try_slot=a
mkfs.ext4 -q -L se-boot -E root_owner=0:0 -d "$work/boot" "$work/boot.img" 16M

# 5. The data partition: the seed config (enrolment required: "Not enrolled" until provisioned).
mkdir -p "$work/data/etc/surgery-edge/mqtt" "$work/data/state"
chmod 0750 "$work/data/etc/surgery-edge"; chmod 0700 "$work/data/etc/surgery-edge/mqtt" "$work/data/state"
# The claim URL goes under `enrolment:` (the seed has that line; a seed config that sets its own
# claimUrl keeps it).
seed_out="$work/data/etc/surgery-edge/config.yaml"
install -m 0600 "${seed:-$repo/image/seed-config.yaml}" "$seed_out"
if ! grep -qE '^  claimUrl:' "$seed_out"; then
  grep -q '^enrolment:' "$seed_out" || printf 'enrolment:\n  required: true\n' >>"$seed_out"
  sed -i "s|^enrolment:\$|enrolment:\n  claimUrl: \"$claim_url\"|" "$seed_out"
fi
# Validated by the agent itself (the bundle in the .deb, on this build's Node).
dpkg-deb -x "$deb" "$work/deb"
"$node" "$work/deb/opt/surgery-edge/dist/surgery-edge.mjs" check-config "$work/data/etc/surgery-edge/config.yaml" >/dev/null
mkfs.ext4 -q -L se-data -E root_owner=0:0 -d "$work/data" "$work/data.img" "${data_mib}M"

# 6. The disk: GPT with named partitions (the names are the PARTLABELs the kernel command line,
#    the agent's update config and grub.cfg's partition numbers rely on), images dd'ed in place.
img="$out/$name.img"
total_mib=$((1 + 32 + 16 + 2 * slot_mib + data_mib + 1))
rm -f "$img"; truncate -s "${total_mib}M" "$img"
sfdisk -q "$img" <<EOF
label: gpt
start=1MiB, size=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="se-esp"
size=16MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="se-boot"
size=${slot_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="se-root-a"
size=${slot_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="se-root-b"
size=${data_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="se-data"
EOF
put() { # put IMAGE PARTNO
  local start; start=$(sfdisk -J "$img" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).partitiontable.partitions[+process.argv[1]-1].start))' "$2")
  dd if="$1" of="$img" bs=512 seek="$start" conv=notrunc,sparse status=none
}
put "$work/esp.img" 1; put "$work/boot.img" 2; put "$out/$name.root.sqfs" 3; put "$work/data.img" 5
t_img=$(date +%s)

# 7. The release bundles of this root (installable on devices running an older version): the full
#    bundle, and the delta bundle whose chunks go into the chunk store beside it (shared by every
#    release built into DIR, so a box on any older release fetches only what it lacks).
if [ -n "$sign" ]; then
  "$repo/image/bundle/make-bundle.sh" --key "$sign" --version "$version" --arch "$arch" --payload "$out/$name.root.sqfs" --out "$out/$name.seb" >/dev/null
  "$repo/image/bundle/make-bundle.sh" --key "$sign" --version "$version" --arch "$arch" --payload "$out/$name.root.sqfs" --out "$out/$name.delta.seb" \
    --delta-store "$out/surgery-edge-$arch.castr" >/dev/null
fi
zstd -q -T0 -3 -f "$img" -o "$img.zst"
t_end=$(date +%s)

printf '{"image":"%s","arch":"%s","version":"%s","imageBytes":%s,"imageAllocatedBytes":%s,"imageZstBytes":%s,"rootSquashfsBytes":%s,"bundleBytes":%s,"seconds":{"rootfs":%s,"initramfs":%s,"squashfs":%s,"disk":%s,"total":%s}}\n' \
  "$img" "$arch" "$version" "$(stat -c %s "$img")" "$(($(stat -c %b "$img") * 512))" "$(stat -c %s "$img.zst")" "$sqfs_bytes" \
  "$( [ -f "$out/$name.seb" ] && stat -c %s "$out/$name.seb" || echo null)" \
  $((t_root - started)) "$t_initramfs" $((t_sqfs - t_root)) $((t_img - t_sqfs)) $((t_end - started)) | tee "$out/build-$arch.json"
