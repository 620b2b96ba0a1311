# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The options that describe a domain, shared by libvirt_domain and libvirt_domain_xml (one argument spec:
    plugins/module_utils/libvirt/domain_args.py)."""

    DOCUMENTATION = r"""
options:
  domain_type:
    description: V(kvm) on hosts with hardware virtualisation, V(qemu) (TCG emulation) elsewhere.
    type: str
    choices: [kvm, qemu]
    default: kvm
  vcpus:
    description: Number of virtual CPUs. Required to define a domain.
    type: int
  memory:
    description: Memory in MiB (maximum and current). Required to define a domain.
    type: int
  cpu:
    description: Guest CPU. Not owned when omitted.
    type: dict
    suboptions:
      mode:
        description: CPU mode.
        type: str
        choices: [host-passthrough, host-model, custom]
        default: host-model
      model:
        description: CPU model for mode V(custom), for example V(qemu64).
        type: str
      sockets:
        description: Topology sockets (sockets*cores*threads must equal O(vcpus)).
        type: int
      cores:
        description: Topology cores per socket.
        type: int
      threads:
        description: Topology threads per core.
        type: int
  machine:
    description: Machine type (V(pc), V(q35) or a versioned one). Not owned when omitted.
    type: str
  firmware:
    description: V(uefi) uses libvirt's firmware auto-selection (needs OVMF on the host).
    type: str
    choices: [bios, uefi]
    default: bios
  boot:
    description: Boot device order, or direct kernel boot.
    type: dict
    suboptions:
      devices:
        description: Boot device order (default V(hd)).
        type: list
        elements: str
        choices: [hd, cdrom, network, fd]
      kernel:
        description: Absolute path of a kernel on the host (direct kernel boot).
        type: str
      initrd:
        description: Absolute path of an initrd on the host.
        type: str
      cmdline:
        description: Kernel command line.
        type: str
  disks:
    description: The domain's disks, in order. Owned as a whole list when the domain is defined.
    type: list
    elements: dict
    suboptions:
      type:
        description: V(file) (qcow2/raw image), V(block) device, libvirt V(volume), or Ceph V(rbd).
        type: str
        choices: [file, block, volume, rbd]
        default: file
      device:
        description: Disk or CD-ROM.
        type: str
        choices: [disk, cdrom]
        default: disk
      path:
        description: Absolute path of the image file (V(file)) or device (V(block)).
        type: str
      pool:
        description: libvirt storage pool (V(volume)) or Ceph pool (V(rbd)).
        type: str
      volume:
        description: libvirt volume name (V(volume)).
        type: str
      image:
        description: RBD image name (V(rbd)).
        type: str
      monitors:
        description: Ceph monitors as V(host) or V(host:port) (V(rbd)).
        type: list
        elements: str
      user:
        description: cephx user, for example V(libvirt) for C(client.libvirt) (V(rbd)).
        type: str
      secret_uuid:
        description: UUID of the libvirt secret with the user's key, see M(hospital.cloud.libvirt_secret) (V(rbd)).
        type: str
      format:
        description: Image format; default V(qcow2) for file disks, V(raw) otherwise (rbd is always raw).
        type: str
        choices: [raw, qcow2]
      target:
        description: Target device in the guest (V(vda), V(sda), ...). Unique per domain.
        type: str
        required: true
      bus:
        description: Disk bus.
        type: str
        choices: [virtio, scsi, sata, ide, usb]
        default: virtio
      cache:
        description: qemu cache mode. Not owned when omitted.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      readonly:
        description: Attach read-only (CD-ROMs always are).
        type: bool
        default: false
  interfaces:
    description: Network interfaces, in order.
    type: list
    elements: dict
    suboptions:
      type:
        description: Attach to a host bridge or a libvirt network.
        type: str
        choices: [bridge, network]
        default: network
      source:
        description: Bridge or network name.
        type: str
        required: true
      model:
        description: NIC model.
        type: str
        default: virtio
      mac:
        description: Fixed MAC address; when omitted the existing or a stable derived MAC is kept.
        type: str
  serial_console:
    description: A serial port with a pty console (C(virsh console)).
    type: bool
    default: false
  serial_log:
    description: Also log the serial console to this file on the host (needs O(serial_console)).
    type: str
  graphics:
    description: Graphical console (VNC or SPICE); see O(graphics_listen) for who can reach it.
    type: str
    choices: [none, vnc, spice]
    default: none
  graphics_listen:
    description:
      - IP address the console listens on; V(127.0.0.1) (loopback, reach it through an SSH tunnel)
        when not set.
      - An address reachable from the network needs O(graphics_password) or the explicit opt-in
        O(graphics_insecure_no_password=true). A changed listen address is drift and is corrected.
    type: str
  graphics_password:
    description:
      - Console password (libvirt C(passwd)). Never returned - the returned XML and the diff show C(********).
        It is compared with the one libvirt keeps (read with C(VIR_DOMAIN_XML_SECURE)), so a
        password changed outside Ansible is corrected and an unchanged one reports no change.
      - VNC authentication uses at most 8 characters and no encryption - prefer loopback, or spice
        with O(graphics_tls).
    type: str
  graphics_insecure_no_password:
    description:
      - Accept a console on a non-loopback O(graphics_listen) without a password - anyone who can
        reach that address and port sees and controls the VM's screen. Insecure; an explicit opt-in.
    type: bool
    default: false
  graphics_tls:
    description:
      - SPICE only - all channels TLS (C(defaultMode=secure)). The host must have SPICE TLS set up
        (C(spice_tls = 1) and certificates in qemu.conf); otherwise the domain fails to start.
    type: bool
    default: false
  metadata:
    description:
      - Owner tags (string values) kept in the domain's C(<metadata>) in the
        C(https://hospital.cloud/xmlns/libvirt/domain/1) namespace; returned by M(hospital.cloud.libvirt_domain_info).
    type: dict
  extra_devices:
    description:
      - XML of further devices, one device element each (for example an C(rng) or C(watchdog) element),
        for what has no typed parameter. Owned - missing ones are added, unknown ones removed.
    type: list
    elements: str
"""
