#!/usr/bin/env bash
# Root image for the dm-crypt guest: the cached base image with the Ceph role's packages installed natively
# (chroot on this machine), the way a site's golden image carries them. Installing them inside the TCG guest
# took 56 min of a 68 min converge (measured); natively it takes ~2 min. The role still runs every task in
# the guest (its package task then finds them present).
# Usage: ceph-image.sh BASE_DIR OUT_DIR   (cached in OUT_DIR, rebuilt when this script or the base change)
set -euo pipefail
base=$1 out=$2
packages=(ceph-mon ceph-mgr ceph-osd ceph-common python3-rados python3-rbd udev cryptsetup-bin lvm2)
recipe=$( { sha256sum "$0" | cut -c1-16; cat "$base/READY"; } | sha256sum | cut -c1-16)
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
if [ -f "$out/READY" ] && [ "$(cat "$out/READY")" = "$recipe" ]; then
  echo "$out"; exit 0
fi
start=$(date +%s)
work="$out.build.$$"
R="$work/rootfs"
rm -rf "$work"; mkdir -p "$work"
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$R/$m" && umount "$R/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
cp -a "$base/rootfs" "$R"
mount -t proc proc "$R/proc"; mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"
# no daemon starts in the chroot, no initramfs rebuild (the guest boots the base image's kernel and initrd)
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 0755 "$R/usr/sbin/policy-rc.d"
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$R/etc/initramfs-tools/update-initramfs.conf"
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get -q update >"$work/apt.log" 2>&1
if ! chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install \
    "${packages[@]}" >>"$work/apt.log" 2>&1; then
  tail -20 "$work/apt.log" >&2; echo "ceph-image: apt-get install failed" >&2; exit 1
fi
chroot "$R" apt-get clean
rm -f "$R/usr/sbin/policy-rc.d"
for m in dev/pts dev proc sys; do umount "$R/$m"; done
rm -rf "$R"/tmp/*
mkfs.ext4 -q -F -L root -d "$R" "$work/root.raw" 4G
qemu-img convert -O qcow2 "$work/root.raw" "$work/ceph.qcow2"
rm -f "$work/root.raw"; rm -rf "$R" "$work/apt.log"
rm -rf "$out"; mv "$work" "$out"
trap - EXIT
echo "$recipe" > "$out/READY"
echo "ceph-image: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
