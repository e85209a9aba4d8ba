"""Bench helper process: sends one 20 ms PCMU stream to each given port until its time is up.

Runs as its own process so the CPU it spends is not charged to the engine under test.
Usage: python feeder.py SECONDS PORT [PORT ...]   (all on 127.0.0.1)
"""

from __future__ import annotations

import math
import socket
import struct
import sys
import time


def main() -> None:
    seconds = float(sys.argv[1])
    ports = [int(p) for p in sys.argv[2:]]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    # A 440 Hz-ish PCMU frame: content does not matter to the cost, only that it is audio.
    payload = bytes(0x80 | int(40 * (1 + math.sin(i / 3))) for i in range(160))
    header = struct.Struct("!BBHII")
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        for index, port in enumerate(ports):
            packet = header.pack(0x80, 0, k & 0xFFFF, k * 160, 1000 + index) + payload
            sock.sendto(packet, ("127.0.0.1", port))
        k += 1
        delay = start + k * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    main()
