#!/usr/bin/env python3
"""Timed probes of fresh `boson up` processes, for bench/run.sh. Each prints `key=value` lines.

  probe.py cold-start BOSON WASM CACHE_DIR SAMPLES [--empty-cache]
      process start -> first 200, polling the port every 0.5 ms; with --empty-cache every
      sample gets a new, empty compile cache under CACHE_DIR.
  probe.py first-request BOSON APP CACHE_DIR SAMPLES WARM_PATH COLD_PATH
      an app whose components have compiled code in the cache: after `Serving`, WARM_PATH is
      requested 20 times on one keep-alive connection, then timed once (a warm request), then
      COLD_PATH, whose component has not run in this process, is timed on the same connection.
  probe.py after-ready BOSON APP CACHE_DIR SAMPLES PATH
      the first request, on a new connection, the moment `boson up` has printed `Serving`.
"""
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(conn, path):
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: status {response.status}")


def timed_get(conn, path):
    start = time.perf_counter()
    get(conn, path)
    return (time.perf_counter() - start) * 1000


def boson(binary, app, cache_dir, state_dir, listen):
    return subprocess.Popen(
        [binary, "up", "--quiet", "--listen", listen, "--from", app,
         "--cache-dir", cache_dir, "--state-dir", state_dir],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def serving_address(process):
    for line in process.stdout:
        if line.startswith("Serving http://"):
            return line.strip().removeprefix("Serving http://")
    raise RuntimeError("boson exited before serving")


def stop(process):
    process.kill()
    process.wait()


def cold_start(binary, wasm, cache_dir, samples, empty):
    times = []
    for i in range(samples):
        with tempfile.TemporaryDirectory() as state:
            cache = os.path.join(cache_dir, f"empty-{i}") if empty else cache_dir
            port = free_port()
            start = time.perf_counter()
            process = boson(binary, wasm, cache, state, f"127.0.0.1:{port}")
            try:
                while True:
                    try:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        get(conn, "/")
                        break
                    except ConnectionRefusedError:
                        if process.poll() is not None:
                            raise RuntimeError("boson exited before serving")
                        time.sleep(0.0005)
                times.append((time.perf_counter() - start) * 1000)
            finally:
                stop(process)
    return times


def first_request(binary, app, cache_dir, samples, warm_path, cold_path):
    warm, cold = [], []
    for _ in range(samples):
        with tempfile.TemporaryDirectory() as state:
            process = boson(binary, app, cache_dir, state, "127.0.0.1:0")
            try:
                host, port = serving_address(process).rsplit(":", 1)
                if warm_path:
                    conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    for _ in range(20):
                        get(conn, warm_path)
                    warm.append(timed_get(conn, warm_path))
                    cold.append(timed_get(conn, cold_path))
                else:
                    start = time.perf_counter()
                    conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    get(conn, cold_path)
                    cold.append((time.perf_counter() - start) * 1000)
            finally:
                stop(process)
    return warm, cold


def show(key, times):
    print(f"{key}_ms={statistics.median(times):.3f}")
    print(f"{key}_samples={' '.join(f'{t:.2f}' for t in times)}")


def main(argv):
    kind, binary, app, cache_dir, samples = argv[1:6]
    samples = int(samples)
    if kind == "cold-start":
        show("start", cold_start(binary, app, cache_dir, samples, "--empty-cache" in argv))
    elif kind == "first-request":
        warm, cold = first_request(binary, app, cache_dir, samples, argv[6], argv[7])
        show("warm", warm)
        show("first", cold)
    elif kind == "after-ready":
        _, cold = first_request(binary, app, cache_dir, samples, None, argv[6])
        show("first", cold)
    else:
        sys.exit(f"unknown probe {kind}")


if __name__ == "__main__":
    main(sys.argv)
