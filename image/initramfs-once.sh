#!/usr/bin/env bash
# Build the image's initramfs exactly once (image/build.sh, docs/image.md "arm64").
#
#   initramfs-once.sh defer ROOT   mmdebstrap --essential-hook: before initramfs-tools and the kernel
#                                  are unpacked, divert update-initramfs to a no-op stub
#   initramfs-once.sh build ROOT   from customize.sh: put the real one back, add squashfs to the
#                                  module list, run update-initramfs -c -k all once
#
# Why: left alone, the kernel's postinst (-c), initramfs-tools' dpkg trigger (-u) and the squashfs
# change (-u) each run mkinitramfs. Natively that costs seconds; for arm64 on an amd64 host every
# cp/find/modprobe in it runs under qemu-user and one run took ~9 min, so three runs did not fit.
# A diversion (not an edited conffile) keeps dpkg from asking about conffiles and is removed
# before the root is frozen, so the image's dpkg database shows no trace of it.
set -euo pipefail
mode=${1:?mode} root=${2:?root}
tool=/usr/sbin/update-initramfs
case "$mode" in
  defer)
    chroot "$root" dpkg-divert --quiet --local --no-rename --divert "$tool.se-real" --add "$tool"
    install -d "$root/usr/sbin"
    printf '#!/bin/sh\n# image/initramfs-once.sh: deferred to the end of the image build\necho "update-initramfs $* deferred by image/initramfs-once.sh" >&2\n' >"$root$tool"
    chmod 0755 "$root$tool"
    ;;
  build)
    started=$(date +%s)
    [ -x "$root$tool.se-real" ] || { echo "initramfs-once: $tool.se-real missing: was the defer hook run?" >&2; exit 1; }
    rm -f "$root$tool"
    chroot "$root" dpkg-divert --quiet --local --rename --remove "$tool"
    [ -x "$root$tool" ] || { echo "initramfs-once: $tool not restored" >&2; exit 1; }
    # The initramfs must mount a squashfs root (the kernel has it as a module).
    grep -qx squashfs "$root/etc/initramfs-tools/modules" || echo squashfs >>"$root/etc/initramfs-tools/modules"
    chroot "$root" update-initramfs -c -k all >/dev/null
    compgen -G "$root/boot/initrd.img-*" >/dev/null || { echo "initramfs-once: no initrd was made" >&2; exit 1; }
    # grub.cfg loads /initrd.img: the kernel's postinst made that link before the initrd existed.
    [ -e "$root/initrd.img" ] || { echo "initramfs-once: /initrd.img does not point at the initrd" >&2; exit 1; }
    [ -z "${SE_INITRAMFS_SECONDS:-}" ] || echo $(($(date +%s) - started)) >"$SE_INITRAMFS_SECONDS"
    ;;
  *) echo "initramfs-once: mode must be defer or build" >&2; exit 2 ;;
esac
