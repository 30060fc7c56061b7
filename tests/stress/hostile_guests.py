"""Hostile guests, item 3: 100 memory bombs and 100 unbounded recursions at once. Each fails its
own request (500: the allocation fails and the guest traps; the wasm stack overflows), the host
keeps serving, nothing panics, and the memory the bombs took is given back. The deadline is
well above the few seconds 200 bombs take, so a machine busy with other work still sees each
request fail by its own cause (500), not by the clock (504). Bounded: about 10 s."""
import sys
import threading
import time

from common import Boson, check, get, guest

N = 100


def main():
    ok = True
    with Boson(guest("c", "guest"), "--max-memory", "32MiB", "--timeout", "20s") as boson:
        for _ in range(10):
            get(boson.addr, "/hello")
        time.sleep(0.5)
        baseline = boson.rss_kib()
        results = {"alloc": [None] * N, "recurse": [None] * N}

        def hit(kind, i):
            results[kind][i] = get(boson.addr, "/" + kind, timeout=30)

        threads = [threading.Thread(target=hit, args=(k, i)) for i in range(N) for k in results]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        for kind, rs in results.items():
            statuses = [s for s, _ in rs]
            ok &= check(all(s == 500 for s in statuses),
                        f"{N} × /{kind} in parallel: statuses {sorted(set(statuses), key=str)}, "
                        f"slowest {max(d for _, d in rs)*1000:.0f} ms")
        ok &= check(get(boson.addr, "/hello")[0] == 200, f"the host serves on ({elapsed:.2f} s for all 200)")
        log = "".join(boson.stderr)
        ok &= check("guest trapped" in log and "panicked" not in log,
                    "each failure logged with its cause, no panic")
        time.sleep(1.5)
        after = boson.rss_kib()
        ok &= check(after <= baseline + 200 * 1024,
                    f"RSS baseline {baseline/1024:.1f} MiB, after {after/1024:.1f} MiB "
                    f"(100 bombs of 32 MiB each ran)")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
