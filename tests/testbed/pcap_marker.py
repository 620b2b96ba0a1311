"""Capture TCP traffic on a test bed bridge and count a marker in the reassembled TCP streams.

tcpdump (installed by install-deps.sh) writes a classic pcap; the streams are put back together per
direction by sequence number, so a marker split over two segments is still found.
"""

from __future__ import annotations

import signal
import struct
import subprocess
import time
from collections import defaultdict
from pathlib import Path


class Capture:
    """tcpdump on `iface`, TCP to/from the given addresses only (the rack's own hosts)."""

    def __init__(self, iface: str, addresses: list[str], path: Path):
        self.path = Path(path)
        filt = "tcp and (%s)" % " or ".join("host %s" % a for a in addresses)
        # pylint: disable-next=consider-using-with
        self.proc = subprocess.Popen(["tcpdump", "-i", iface, "-s", "0", "-U", "-n", "-w", str(self.path), filt],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (self.path.exists() and self.path.stat().st_size >= 24):  # the pcap header: listening
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tcpdump did not start: %s" % self.proc.stderr.read().decode(errors="replace"))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # our own tcpdump, by its PID
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def tcp_streams(path: Path) -> dict[tuple, bytes]:
    """{(src, sport, dst, dport): payload bytes in sequence order} from an Ethernet pcap file."""
    data = Path(path).read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    segs: dict[tuple, list[tuple[int, bytes]]] = defaultdict(list)
    first: dict[tuple, int] = {}
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "IIII", data[off:off + 16])[2]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        eth = 14
        etype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
        if etype == 0x8100:
            etype, eth = struct.unpack("!H", frame[16:18])[0], 18
        if etype != 0x0800 or len(frame) < eth + 20:
            continue
        ip = frame[eth:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if not payload:
            continue
        key = ("%d.%d.%d.%d" % tuple(ip[12:16]), sport, "%d.%d.%d.%d" % tuple(ip[16:20]), dport)
        base = first.setdefault(key, seq)
        segs[key].append(((seq - base) % 2 ** 32, payload))
    streams = {}
    for key, parts in segs.items():
        out = bytearray()
        end = 0
        for rel, payload in sorted(parts, key=lambda p: p[0]):
            if rel + len(payload) <= end:
                continue  # a retransmission of what we have
            out += payload[max(0, end - rel):]
            end = rel + len(payload)
        streams[key] = bytes(out)
    return streams


def count_marker(path: Path, marker: bytes) -> dict[tuple, int]:
    """{flow: occurrences} of marker in each reassembled TCP stream of the capture (flows with hits only)."""
    return {k: s.count(marker) for k, s in tcp_streams(path).items() if marker in s}
