"""Shared helpers of the stress scripts: start `boson up` on a free loopback port, talk HTTP over
plain sockets, read the process's RSS. Standard library only."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.environ["HOME"], ".cache/boson/target"))
GUESTS = os.environ.get("BOSON_GUESTS_DIR", os.path.join(os.environ["HOME"], ".cache/boson/guests"))
BOSON = os.environ.get("BOSON_BIN", os.path.join(TARGET, "debug", "boson"))


def guest(lang, name):
    path = os.path.join(GUESTS, lang, name + ".wasm")
    if not os.path.isfile(path):
        sys.exit(f"{path} is missing: run tests/guests/build.sh")
    return path


class Boson:
    """`boson up` serving one component at `/...`; stopped on exit of the `with` block."""

    def __init__(self, wasm, *args, app_dir=None, component_extra=""):
        """`app_dir`: an existing folder to (re)use, keeping its state between runs;
        `component_extra`: more manifest lines for the component (grants)."""
        self.own_dir = app_dir is None
        self.dir = app_dir or tempfile.mkdtemp(prefix="boson-stress-")
        with open(os.path.join(self.dir, "spin.toml"), "w") as f:
            f.write(
                'spin_manifest_version = 2\n[application]\nname = "stress"\n'
                '[[trigger.http]]\nroute = "/..."\ncomponent = "guest"\n'
                f'[component.guest]\nsource = "{wasm}"\n{component_extra}'
            )
        self.proc = subprocess.Popen(
            [BOSON, "up", "--listen", "127.0.0.1:0", "--from", self.dir, "-q", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.stderr = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.time() + 240
        for line in self.proc.stdout:
            if line.startswith("Serving http://"):
                host, port = line.strip()[len("Serving http://"):].rsplit(":", 1)
                self.addr = (host, int(port))
                break
            if time.time() > deadline:
                break
        else:
            sys.exit("boson did not start:\n" + "".join(self.stderr))
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def get(addr, path, timeout=30.0):
    """One GET on a fresh connection: (status or None, seconds taken)."""
    start = time.monotonic()
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    except OSError:
        status = None
    return status, time.monotonic() - start


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def check(ok, message):
    print(("ok    " if ok else "FAIL  ") + message, flush=True)
    return ok
