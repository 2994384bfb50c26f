#!/usr/bin/env bash
# The slot image (squashfs) of a root tree, made the same way every time so that two releases that
# differ in one package differ in few bytes (docs/updates.md, "Delta updates"): casync's chunks of
# the unchanged files then match the running slot, and a delta bundle fetches little more than the
# change. image/build.sh and make test-image-update both use this; so should anything that repacks
# a root for release.
#
#   image/mkroot-sqfs.sh TREE OUT.sqfs
#
# - every timestamp fixed (-all-time, -mkfs-time): a rebuilt root does not differ in every inode;
# - no fragments: small files' tails are not packed together, so one changed file does not move
#   every tail block after it (costs about 4 % of the image);
# - xz, because GRUB reads the kernel and initrd straight out of the slot (its squash4 reads xz,
#   gzip and lzo, not zstd); mksquashfs 4.5 sorts directory entries and is reproducible by default.
set -euo pipefail
[ $# -eq 2 ] && [ -d "$1" ] || { sed -n '2,10p' "$0" >&2; exit 2; }
epoch=${SE_SQFS_EPOCH:-1704067200}
env -u SOURCE_DATE_EPOCH mksquashfs "$1" "$2" -comp xz -noappend -no-fragments -all-time "$epoch" -mkfs-time "$epoch" -reproducible -quiet -no-progress >/dev/null
