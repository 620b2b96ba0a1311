#!/usr/bin/env bash
# Install the Debian packages hospital.cloud's tests and lab need (idempotent).
# Runs as root on Debian 12 (bookworm); skips apt entirely when everything is present.
set -euo pipefail
PKGS=(
  # libvirt + QEMU (TCG guests), schema validation
  qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libxml2-utils
  python3-libvirt python3-lxml qemu-block-extra
  # Ceph (pacific, distribution packages) and its Python bindings
  ceph-mon ceph-mgr ceph-osd ceph-common rbd-mirror python3-rados python3-rbd udev
  # venv for /usr/bin/python3 (the interpreter that has rados/rbd/libvirt)
  python3-venv python3-dev
  # base image builder, systemd hosts, networking
  debootstrap systemd-container bridge-utils iproute2 iptables e2fsprogs
  openssh-client rsync shellcheck
  # packet captures on the test bed's own bridges (encryption-in-flight tests, issue #14)
  tcpdump
  # libvirt NAT networks (DHCP/DNS for guests: molecule kvm scenario)
  dnsmasq-base
  # promtool and amtool for the monitoring role's render test (tests/integration/monitoring)
  prometheus prometheus-alertmanager
  # the backup engine's repository (tests/integration/backup; Debian 13 hosts get 0.18 from the role)
  restic
  # the guest agent the fsfreeze test copies into its guest (tests/integration/backup/test_backup_fsfreeze.py)
  qemu-guest-agent
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} Debian packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: must run as root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "install-deps: apt-get update failed: is the Debian package registry reachable?" >&2; exit 1; }
# policy-rc.d: the machine has no systemd; keep maintainer scripts from trying to start daemons
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
