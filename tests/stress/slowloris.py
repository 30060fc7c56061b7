"""Hostile clients, item 6: 2,000 connections that send a request-header byte every second are
closed at the header-read timeout (3 s here), and 200 slow request bodies end at the request
deadline, while a normal load on the side keeps ≥ 99.9 % success. Then 200 slow readers of an
8 MiB response (a byte a second) are cut off at the write-stall timeout (2 s here, the request
deadline being 30 s, which would otherwise hold them), again beside a normal load: all 200
connections must be gone well before the deadline, within 25 s of the start. The 200 guests
first write until their connections stall, 3 to 8 s on 2 cores when nothing else runs and over
10 s beside a build, then wait out the 2 s; the readers stop as soon as the host let them go.
Bounded: about 20 s, 40 s at most."""
import asyncio
import os
import socket
import sys
import time

from common import Boson, check, guest, percentile

SLOW_HEADERS = 2000
SLOW_BODIES = 200
HEADER_TIMEOUT = 3.0
DEADLINE = 2.0
LOAD_SECONDS = 8.0


async def slow_header_client(addr, closed_after):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(*addr)
    except OSError:
        closed_after.append(None)
        return
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=1.0)
                if not data:
                    break  # closed by the host
                if data.startswith(b"HTTP/"):
                    break  # answered (e.g. 408) and closed
            except asyncio.TimeoutError:
                continue
    except (ConnectionError, OSError):
        pass
    closed_after.append(time.monotonic() - start)
    writer.close()


async def slow_body_client(addr, ended_after, statuses):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        await writer.drain()
        status = None
        while True:
            writer.write(b"x")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=1.0)
                if data.startswith(b"HTTP/"):
                    status = int(data.split(b" ", 2)[1])
                break
            except asyncio.TimeoutError:
                continue
    except (ConnectionError, OSError):
        status = None
    ended_after.append(time.monotonic() - start)
    statuses.append(status)


SLOW_READERS = 200
WRITE_STALL = 2.0
# Well before the 30 s deadline, which would also end the connections.
READER_SECONDS = 25.0


async def slow_reader_client(addr, stop):
    """Asks for 8 MiB and then reads a byte a second, with a tiny receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, addr)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /big/8388608 HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        while not stop.is_set():
            if not await reader.read(1):
                break
            await asyncio.sleep(1.0)
        writer.close()
    except (ConnectionError, OSError):
        pass


def open_sockets(pid):
    fd_dir = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except OSError:
            pass
    return count


async def slow_readers(boson):
    """Starts the slow readers; returns seconds until the host had closed (nearly) all of their
    connections (or None), the connections held at the peak, and the normal load's outcomes."""
    addr = boson.addr
    baseline = open_sockets(boson.proc.pid)
    outcomes = []
    start = time.monotonic()
    until = start + READER_SECONDS
    stop = asyncio.Event()
    tasks = [asyncio.create_task(normal_client(addr, until, outcomes, stop)) for _ in range(8)]
    tasks += [asyncio.create_task(slow_reader_client(addr, stop)) for _ in range(SLOW_READERS)]
    await asyncio.sleep(0.5)
    peak = open_sockets(boson.proc.pid)
    released = None
    while time.monotonic() < until:
        held = open_sockets(boson.proc.pid) - baseline
        if held < SLOW_READERS // 10:
            released = time.monotonic() - start
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    return released, peak - baseline, outcomes


async def normal_client(addr, until, outcomes, stop=None):
    while time.monotonic() < until and not (stop and stop.is_set()):
        start = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(*addr)
            writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
            outcomes.append((data.startswith(b"HTTP/1.1 200"), time.monotonic() - start))
        except (OSError, asyncio.TimeoutError):
            outcomes.append((False, time.monotonic() - start))


async def attack(addr):
    closed_after, body_ended, body_statuses, outcomes = [], [], [], []
    until = time.monotonic() + LOAD_SECONDS
    tasks = [asyncio.create_task(normal_client(addr, until, outcomes)) for _ in range(8)]
    tasks += [asyncio.create_task(slow_header_client(addr, closed_after)) for _ in range(SLOW_HEADERS)]
    tasks += [asyncio.create_task(slow_body_client(addr, body_ended, body_statuses))
              for _ in range(SLOW_BODIES)]
    await asyncio.gather(*tasks)
    return closed_after, body_ended, body_statuses, outcomes


def side_load_and_log_ok(outcomes, boson):
    """The normal load beside an attack kept ≥ 99.9 % success, and the host never panicked."""
    good = sum(1 for g, _ in outcomes if g)
    rate = good / len(outcomes) if outcomes else 0.0
    ok = check(rate >= 0.999,
               f"normal load meanwhile: {good}/{len(outcomes)} succeeded ({rate*100:.2f} %), "
               f"p99 {percentile([d for _, d in outcomes], 99)*1000:.0f} ms")
    return check(not any("panicked" in l for l in boson.stderr), "no panic in the host log") and ok


def main():
    ok = True
    with Boson(guest("c", "guest"), "--header-read-timeout", "3s", "--timeout", "2s") as boson:
        closed_after, body_ended, body_statuses, outcomes = asyncio.run(attack(boson.addr))
        refused = sum(1 for c in closed_after if c is None)
        closed = [c for c in closed_after if c is not None]
        ok &= check(refused == 0 and len(closed) == SLOW_HEADERS and max(closed) <= HEADER_TIMEOUT + 1.5,
                    f"{len(closed)}/{SLOW_HEADERS} slow-header connections closed by the host: "
                    f"p50 {percentile(closed, 50):.2f} s, max {max(closed):.2f} s "
                    f"(header timeout {HEADER_TIMEOUT:.0f} s; {refused} refused)")
        ok &= check(max(body_ended) <= DEADLINE + 1.5,
                    f"{len(body_ended)} slow bodies ended: p50 {percentile(body_ended, 50):.2f} s, "
                    f"max {max(body_ended):.2f} s (deadline {DEADLINE:.0f} s; statuses "
                    f"{sorted(set(body_statuses), key=str)})")
        ok &= side_load_and_log_ok(outcomes, boson)
    with Boson(guest("c", "guest"), "--timeout", "30s",
               "--write-stall-timeout", f"{WRITE_STALL:.0f}s") as boson:
        released, peak, outcomes = asyncio.run(slow_readers(boson))
        ok &= check(released is not None,
                    f"{SLOW_READERS} slow readers of 8 MiB ({peak} connections held at the peak): "
                    f"all cut off after "
                    f"{'never' if released is None else f'{released:.2f} s'} "
                    f"(write-stall timeout {WRITE_STALL:.0f} s, deadline 30 s)")
        ok &= side_load_and_log_ok(outcomes, boson)
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
