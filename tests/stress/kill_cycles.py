"""Crashes, item 10: key-value and SQLite under SIGKILL. Each cycle starts `boson up` on the same
app, checks that every write acknowledged before the last kill is readable through the guest,
writes sequenced keys (key-value) and rows (SQLite) through the guest, and SIGKILLs the host at a
random moment; then both database files must pass `PRAGMA integrity_check` and hold every
acknowledged write. KILL_CYCLES sets the number of cycles (200 by hand; run.sh uses fewer to stay
bounded); KILL_SEED makes the kill moments repeatable."""
import json
import os
import random
import shutil
import socket
import sqlite3
import sys
import threading
import time

from common import Boson, check, guest

CYCLES = int(os.environ.get("KILL_CYCLES", "200"))
SEED = int(os.environ.get("KILL_SEED", str(int(time.time()))))


def send(addr, method, path, body=b""):
    """One request on a fresh connection: (status or None, body)."""
    try:
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None, b""
    if not data.startswith(b"HTTP/"):
        return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2:]
        rest = body
    return int(head.split(b" ", 2)[1]), rest


class Writer(threading.Thread):
    """Writes key `n` to the key-value store and row `n` to SQLite, alternately, until the host
    stops answering; keeps what was acknowledged."""

    def __init__(self, addr, first):
        super().__init__(daemon=True)
        self.addr, self.next = addr, first
        self.keys, self.rows = [], []

    def run(self):
        while True:
            n = self.next
            self.next += 1
            if n % 2:
                status, _ = send(self.addr, "PUT", f"/kv/default/set/key-{n}", f"value-{n}".encode())
                if status != 200:
                    return
                self.keys.append(n)
            else:
                stmt = {"statement": "INSERT INTO seq (n, v) VALUES (?, ?)", "params": [{"integer": n}, {"text": f"row-{n}"}]}
                status, _ = send(self.addr, "POST", "/sql/default", json.dumps(stmt).encode())
                if status != 200:
                    return
                self.rows.append(n)


def integrity(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def main():
    rng = random.Random(SEED)
    app_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"boson-kill-{os.getpid()}")
    os.makedirs(app_dir, exist_ok=True)
    kv_db = os.path.join(app_dir, ".boson", "key_value", "default.db")
    sql_db = os.path.join(app_dir, ".boson", "sqlite", "default.db")
    acked_keys, acked_rows = set(), set()
    last_keys, last_rows = [], []
    lost = broken = 0
    total_acked = 0
    next_n = 0
    started = time.monotonic()
    for cycle in range(CYCLES):
        boson = Boson(guest("c", "kv"), "--sqlite",
                      "CREATE TABLE IF NOT EXISTS seq (n INTEGER PRIMARY KEY, v TEXT NOT NULL)",
                      app_dir=app_dir,
                      component_extra='key_value_stores = ["default"]\nsqlite_databases = ["default"]\n')
        # What the last cycle acknowledged reads back through the guest.
        for n in last_keys[-20:]:
            status, body = send(boson.addr, "GET", f"/kv/default/get/key-{n}")
            if (status, body) != (200, f"value-{n}".encode()):
                lost += 1
                print(f"cycle {cycle}: key-{n} lost: {status} {body[:80]!r}", flush=True)
        if last_rows:
            stmt = {"statement": "SELECT count(*) FROM seq WHERE n >= ?", "params": [{"integer": last_rows[0]}]}
            status, body = send(boson.addr, "POST", "/sql/default", json.dumps(stmt).encode())
            if status != 200 or json.loads(body)["rows"][0][0]["integer"] < len(last_rows):
                lost += 1
                print(f"cycle {cycle}: rows lost: {status} {body[:200]!r}", flush=True)
        writer = Writer(boson.addr, next_n)
        writer.start()
        time.sleep(rng.uniform(0.02, 0.5))
        boson.proc.kill()
        boson.proc.wait()
        writer.join()
        next_n = writer.next + 1
        last_keys, last_rows = writer.keys, writer.rows
        acked_keys.update(writer.keys)
        acked_rows.update(writer.rows)
        total_acked += len(writer.keys) + len(writer.rows)

        # With the host dead: both files intact and holding every acknowledged write.
        for path in (kv_db, sql_db):
            result = integrity(path)
            if result != "ok":
                broken += 1
                print(f"cycle {cycle}: {path}: integrity_check: {result}", flush=True)
        conn = sqlite3.connect(kv_db)
        stored = {k for (k,) in conn.execute("SELECT key FROM kv")}
        conn.close()
        missing = [n for n in acked_keys if f"key-{n}" not in stored]
        conn = sqlite3.connect(sql_db)
        rows = {n for (n,) in conn.execute("SELECT n FROM seq")}
        conn.close()
        missing += [n for n in acked_rows if n not in rows]
        if missing:
            lost += len(missing)
            print(f"cycle {cycle}: {len(missing)} acknowledged writes missing, e.g. {missing[:5]}", flush=True)
    took = time.monotonic() - started
    shutil.rmtree(app_dir, ignore_errors=True)
    ok = check(lost == 0 and broken == 0,
               f"{CYCLES} SIGKILL cycles (seed {SEED}): {total_acked} acknowledged writes "
               f"({len(acked_keys)} key-value, {len(acked_rows)} SQLite), {lost} lost, "
               f"integrity_check ok {2 * CYCLES - broken}/{2 * CYCLES}; {took:.0f} s")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
