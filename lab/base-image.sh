#!/usr/bin/env bash
# Build (once) and cache a Debian base (bookworm or trixie) for the test bed and the lab:
#   rootfs/        debootstrap'ed tree with systemd, sshd, python3 (systemd-nspawn hosts)
#   vmlinuz initrd kernel + trimmed initrd for direct kernel boot of TCG guests
#   base.qcow2     ext4 root filesystem image of rootfs (root=/dev/vda)
#   id_ed25519     SSH key of the test bed, authorised for root in the image
# Usage: base-image.sh [CACHE_DIR [SUITE]]   (defaults: $HC_CACHE_DIR or /var/cache/hospital-cloud;
#        $HC_DEBIAN_SUITE or bookworm). Each suite has its own cache directory, base-SUITE.
# Prints the cache directory on success. Rebuilt only when this script changes (recipe hash).
set -euo pipefail
suite=${2:-${HC_DEBIAN_SUITE:-bookworm}}
case "$suite" in
  bookworm|trixie) ;;
  *) echo "base-image: unknown Debian suite '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac
cache=${1:-${HC_CACHE_DIR:-/var/cache/hospital-cloud}}/base-$suite
mirror=${HC_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
recipe=$(sha256sum "$0" | cut -c1-16)
mkdir -p "$cache"
exec 9>"$cache.lock"
flock 9
if [ -f "$cache/READY" ] && [ "$(cat "$cache/READY")" = "$recipe" ]; then
  echo "$cache"; exit 0
fi
for tool in debootstrap mkfs.ext4 qemu-img ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "base-image: '$tool' is missing (run: make deps)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }
start=$(date +%s)
work="$cache.build.$$"
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
echo "base-image: debootstrap $suite from $mirror into $work (takes ~2-3 min)" >&2
include=systemd,systemd-sysv,udev,dbus,openssh-server,python3,python3-apt,iproute2,sudo,ca-certificates,linux-image-cloud-amd64,initramfs-tools,zstd,less,procps,kmod
if ! debootstrap --variant=minbase --include="$include" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  echo "base-image: debootstrap failed: is the Debian package registry ($mirror) reachable?" >&2
  exit 1
fi
R="$work/rootfs"
echo "hc-base" > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 hc-base\n' > "$R/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > "$R/etc/fstab"
# network: DHCP on any wired interface (guests: ens*/eth*, nspawn: host0); the lab overrides it
mkdir -p "$R/etc/systemd/network"
cat > "$R/etc/systemd/network/80-dhcp.network" <<'NET'
[Match]
Name=en* eth* host0
[Network]
DHCP=yes
NET
chroot "$R" systemctl enable systemd-networkd ssh >/dev/null 2>&1
chroot "$R" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# serial console for TCG guests
chroot "$R" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1 || true
# SSH: key-only root login with the test bed's key
ssh-keygen -q -t ed25519 -N '' -C hospital-cloud-testbed -f "$work/id_ed25519"
install -d -m 0700 "$R/root/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' > "$R/etc/ssh/sshd_config.d/hospital-cloud.conf"
# host keys are generated per host on first boot, not baked into the image
rm -f "$R"/etc/ssh/ssh_host_*
cat > "$R/etc/systemd/system/hc-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
chroot "$R" systemctl enable hc-ssh-hostkeys.service >/dev/null 2>&1
# trimmed initrd: direct kernel boot of a virtio guest needs only these
printf 'virtio_pci\nvirtio_blk\nvirtio_net\next4\n' >> "$R/etc/initramfs-tools/modules"
sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
kver=$(find "$R/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -1)
chroot "$R" update-initramfs -u -k "$kver" >/dev/null 2>&1
cp "$R/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$R/boot/initrd.img-$kver" "$work/initrd"
echo "root=/dev/vda rw console=ttyS0 net.ifnames=0" > "$work/cmdline"
chroot "$R" apt-get clean
# keep apt lists: a real installed host has them (and check mode needs them to predict installs)
rm -rf "$R"/tmp/* "$R/etc/machine-id"
: > "$R/etc/machine-id"
mkfs.ext4 -q -F -L root -d "$R" "$work/base.raw" 3G
qemu-img convert -O qcow2 "$work/base.raw" "$work/base.qcow2"
rm -f "$work/base.raw"
rm -rf "$cache"
mv "$work" "$cache"
trap - EXIT
echo "$recipe" > "$cache/READY"
echo "base-image: built in $(( $(date +%s) - start )) s" >&2
echo "$cache"
