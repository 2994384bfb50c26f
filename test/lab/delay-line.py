#!/usr/bin/env python3
"""
A delay line for the namespace lab (the kernel here has no netem): a TUN device that every packet
of one ISP is routed through once per direction; each packet is written back into the kernel
DELAY_MS later, in order. Routed in by `ip rule iif down0/up0 lookup <table>` (default dev TUN),
back out by the main table (iif TUN matches neither rule). See test/lab/lab.ts delay().
usage: delay-line.py TUN_NAME DELAY_MS     prints "ready" once the device exists. stdlib only.
"""
import collections, fcntl, os, select, struct, sys, time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

name, delay = sys.argv[1], float(sys.argv[2]) / 1000.0
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
queue = collections.deque()  # (due, packet); one constant delay keeps FIFO order
print("ready", flush=True)
while True:
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        os.write(fd, queue.popleft()[1])
    timeout = max(0.0, queue[0][0] - now) if queue else None
    readable, _, _ = select.select([fd], [], [], timeout)
    if readable:
        queue.append((time.monotonic() + delay, os.read(fd, 65535)))
