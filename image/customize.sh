#!/usr/bin/env bash
# mmdebstrap --customize-hook for the appliance root (image/build.sh): runs on the build host with
# the finished root at $1, before it is frozen into the slot's squashfs. Environment from build.sh:
# SE_REPO, SE_KEYS_DIR (trusted update public keys), SE_ICB_CA (the ICB CA certificate boxes claim
# through), SE_RELEASE (image-release text).
set -euo pipefail
root=${1:?root}
repo=${SE_REPO:?}

cp -a "$repo/image/rootfs/." "$root/"
echo surgery-edge >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsurgery-edge\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# Mount points on the read-only root for the data and boot partitions and their bind mounts.
install -d -m 0755 "$root/data" "$root/boot/ab"
install -d -m 0750 "$root/etc/surgery-edge"
install -d -m 0700 "$root/var/lib/surgery-edge"

# The trusted ICB update keys ride in the signed root: they change only with a signed image.
install -d -m 0755 "$root/usr/share/surgery-edge/update-keys"
install -m 0644 "$SE_KEYS_DIR"/*.pem "$root/usr/share/surgery-edge/update-keys/"
# The ICB CA: the only CA the box trusts for the fleet's enrolment endpoint (enrolment.claimCaPath).
install -m 0644 "${SE_ICB_CA:?}" "$root/usr/share/surgery-edge/icb-ca.crt"
printf '%s\n' "$SE_RELEASE" >"$root/usr/lib/surgery-edge/image-release"

# The one initramfs of the build (with squashfs: the root is one); deferred until now by
# initramfs-once.sh's --essential-hook.
"$repo/image/initramfs-once.sh" build "$root"
rm -f "$root/vmlinuz.old" "$root/initrd.img.old" "$root"/boot/*.old-dkms

systemctl --root="$root" enable systemd-networkd.service surgery-edge-trial-guard.timer surgery-edge-grow-data.service >/dev/null 2>&1
# The telephony capability decides when the local SIP proxy runs; listening on every port from
# first boot (the package default) is not its call to make here.
systemctl --root="$root" disable kamailio.service >/dev/null 2>&1 || true
systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service >/dev/null 2>&1 || true

# Empty machine-id on a read-only root: systemd makes a transient one in /run at every boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id" 2>/dev/null || true
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/* "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
