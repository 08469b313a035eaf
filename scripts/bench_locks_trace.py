#!/usr/bin/env python3
"""The lock-contention and trace-correlation rows of `make bench` (run by
scripts/bench.sh after scripts/bench.py; appended to build/bench-results.txt).

  locks: tests/progs/bench_locks.c
    - uncontended lock/unlock pairs: added ns per pair (target <= 5 ns)
    - 4 threads contending on one mutex: CPU-time and elapsed ratio against no
      preload at the default LIBPROF_MUTEX_RATE (target <= 5% overhead)
  trace: tests/progs/trace_server.c under wrk on loopback, a traceparent header
    on every request, all profiles on: requests per second against no preload
    (target at most 3% fewer); tests/progs/bench_reads.c: CPU cost of the read
    wrapper per read of a traced request head, and per read of a pipe.

Runs are interleaved (none, libprof, none, ...), medians reported.
Environment: BENCH_ROUNDS (7), BENCH_PAIRS (100000000), BENCH_WRK_SECONDS (4).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "build", "libprof.so")
PROGS = os.path.join(ROOT, "build", "progs")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "100000000"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "4"))


def run(argv, preload, out_dir, extra=None):
    """CPU seconds (user+sys, all threads) and elapsed seconds of one run."""
    env = dict(os.environ, LIBPROF_OUTPUT_DIR=out_dir)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = LIB
        env.update(extra or {})
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.execve(argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed")
    return ru.ru_utime + ru.ru_stime, time.monotonic() - start


def interleaved(argv, out_dir, rounds=ROUNDS):
    none, lp = [], []
    run(argv, False, out_dir)                       # warm-up
    for _ in range(rounds):
        none.append(run(argv, False, out_dir))
        lp.append(run(argv, True, out_dir))
    med = lambda runs, i: statistics.median(r[i] for r in runs)
    return med(none, 0), med(lp, 0), med(none, 1), med(lp, 1)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def locks(tmp):
    lines = ["", "locks: tests/progs/bench_locks.c, %d rounds interleaved, medians" % ROUNDS]
    c0, c1, _, _ = interleaved([f"{PROGS}/bench_locks", "pair", str(PAIRS)], tmp)
    added = (c1 - c0) / PAIRS * 1e9
    lines.append(f"  uncontended lock/unlock pair: {c0 / PAIRS * 1e9:.2f} ns -> "
                 f"{c1 / PAIRS * 1e9:.2f} ns, added {added:+.2f} ns   target <= 5 ns   "
                 f"{verdict(added <= 5)}")
    c0, c1, w0, w1 = interleaved([f"{PROGS}/bench_locks", "contended", "4", "400000"], tmp)
    lines.append(f"  contended, 4 threads, one mutex: CPU {c0:.3f} s -> {c1:.3f} s "
                 f"(ratio {c1 / c0:.3f}), elapsed {w0:.3f} s -> {w1:.3f} s (ratio {w1 / w0:.3f})"
                 f"   target <= 5% overhead   {verdict(c1 / c0 <= 1.05)}")
    return lines


def server_rps(preload, tmp):
    port_file = os.path.join(tmp, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    env = dict(os.environ, LIBPROF_OUTPUT_DIR=tmp)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = LIB
    server = subprocess.Popen([f"{PROGS}/trace_server", "pool", port_file], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(port_file) and os.path.getsize(port_file):
                break
            time.sleep(0.05)
        port = open(port_file).read().strip()
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{WRK_SECONDS}s", "-H",
                              "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                              f"http://127.0.0.1:{port}/fast"], capture_output=True, text=True,
                             timeout=WRK_SECONDS + 30).stdout
        rps = float(next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")))
        subprocess.run(["curl", "-s", "-m", "5", f"http://127.0.0.1:{port}/quit"],
                       capture_output=True, timeout=10)
        server.wait(timeout=15)
        return rps
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def trace(tmp):
    lines = ["", "trace: tests/progs/trace_server.c (3 workers) under wrk -t2 -c16, a traceparent "
             "on every request, all profiles on; %d rounds interleaved" % max(3, ROUNDS // 2)]
    if not shutil.which("wrk"):
        return lines + ["  wrk is not installed (scripts/install-deps.sh bench): skipped"]
    none, lp = [], []
    for _ in range(max(3, ROUNDS // 2)):
        none.append(server_rps(False, tmp))
        lp.append(server_rps(True, tmp))
    n, l = statistics.median(none), statistics.median(lp)
    loss = (n - l) / n * 100
    lines.append(f"  requests/s: {n:.0f} without, {l:.0f} with libprof ({loss:+.1f}% fewer)"
                 f"   target <= 3% fewer   {verdict(loss <= 3)}")
    reads = 1000000
    for kind in ("socket", "pipe"):
        c0, c1, _, _ = interleaved([f"{PROGS}/bench_reads", kind, str(reads)], tmp, 5)
        lines.append(f"  read wrapper, {kind}: {(c1 - c0) / reads * 1e9:+.0f} ns of CPU per read"
                     + (" of a 222-byte traced request head" if kind == "socket" else
                        " (not a socket: one cached check)"))
    return lines


def main():
    with tempfile.TemporaryDirectory(prefix="libprof-bench-") as tmp:
        lines = locks(tmp) + trace(tmp)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(ROOT, "build", "bench-results.txt"), "a") as f:
        f.write(text)


main()
