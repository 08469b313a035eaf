#!/usr/bin/env python3
"""The collector's rows of `make bench` (scripts/bench.py runs run()); alone:
python3 scripts/bench_collector.py [path of libprof-collector].

ingest  Profiles per second that build/libprof-collector stores, posted to
        POST /ingest?format=pprof on loopback by BENCH_INGEST_CLIENTS (8)
        concurrent clients, each on its own keep-alive connection, until
        BENCH_INGEST_PROFILES (10000) are stored. Each body is a gzip pprof of
        about 34 KiB, shaped as libprof writes them: samples/count and
        cpu/nanoseconds, 700 samples with stacks 8 to 40 deep over 400 functions
        in 4 mappings with build ids, 70% of them labelled with one of 20
        trace ids (and a span id). A pool of 50 such profiles, all different,
        is posted round-robin (making each body unique would cost the client
        more than the server). Target: at least 200 profiles/s.
trace   The latency of GET /api/v1/profiles?service=&trace_id= (the merged gzip
        pprof of one trace, what `go tool pprof URL` fetches) with those 10000
        profiles stored, for a trace of one request: it is in one profile, as
        a request's samples are (one profile per 10 s interval). Median of 11
        queries after one warm-up, each on a new connection, the whole answer
        read. Target: under 100 ms. Also reported: the collector's CPU time per
        profile ingested (from /proc), which the clients' share of the CPUs does
        not change. Also reported: the same trace as the page's
        flame graph (/api/v1/flamegraph), and a trace found in 200 profiles
        (every pool profile's traces recur once per 50 posts).

The collector runs with its defaults (4 HTTP threads) on a database in a
temporary directory. Any failed request makes the benchmark fail.
"""
import http.client
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import gzip

INGEST_TARGET = 200.0           # profiles per second
TRACE_TARGET_MS = 100.0
POOL = 50
QUERIES = 11


class CollectorBenchError(Exception):
    pass


# ---- a pprof as libprof writes it, encoded by hand (no protobuf module needed) ----

def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7f
        v >>= 7
        if not v:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _num(field, v):
    return _varint(field << 3) + _varint(v)


def _msg(field, body):
    return _varint(field << 3 | 2) + _varint(len(body)) + body


def _packed(field, values):
    return _msg(field, b"".join(_varint(v) for v in values))


WORDS = ("http request parse json encode buffer alloc hash table lookup render template sql "
         "query row scan compress write read socket event loop handler cache lock queue worker "
         "task").split()
LIBS = ("/usr/bin/server", "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libz.so.1")


def make_profile(rng, time_ns, traces, n_samples=700, n_funcs=400):
    """A gzip pprof; traces: the trace ids its samples are labelled with."""
    strings, index = [], {}

    def s(x):
        if x not in index:
            index[x] = len(strings)
            strings.append(x)
        return index[x]

    s("")
    out = bytearray()
    out += _msg(1, _num(1, s("samples")) + _num(2, s("count")))
    out += _msg(1, _num(1, s("cpu")) + _num(2, s("nanoseconds")))
    # the same program in every profile: mappings and functions do not depend on rng
    for i, lib in enumerate(LIBS):
        base = 0x400000 + i * 0x1000000
        out += _msg(3, _num(1, i + 1) + _num(2, base) + _num(3, base + 0x800000) + _num(5, s(lib)) +
                    _num(6, s("%040x" % random.Random(i).getrandbits(160))) + _num(7, 1) +
                    _num(8, 1) + _num(9, 1))
    for f in range(1, n_funcs + 1):
        fr = random.Random(f)
        name = "%s_%s_%s_%d" % (fr.choice(("srv", "lib", "core", "net", "db")), fr.choice(WORDS),
                                fr.choice(WORDS), f)
        line = fr.randrange(10, 3000)
        out += _msg(5, _num(1, f) + _num(2, s(name)) + _num(3, s(name)) +
                    _num(4, s("src/%s/%s.c" % (fr.choice(WORDS), fr.choice(WORDS)))) + _num(5, line))
        m = 1 + f % len(LIBS)
        out += _msg(4, _num(1, f) + _num(2, m) + _num(3, 0x400000 + (m - 1) * 0x1000000 + f * 64) +
                    _msg(4, _num(1, f) + _num(2, line + 5)))
    roots = (3, 7, 11)
    for i in range(n_samples):
        # stacks share their callers, as real ones do; leaf first in pprof
        stack = [roots[i % 3]] + [rng.randrange(1, n_funcs + 1) if rng.random() < 0.3
                                  else 1 + (k * 37 + i % 7) % n_funcs
                                  for k in range(rng.randrange(8, 40))]
        n = rng.randrange(1, 20)
        sample = _packed(1, reversed(stack)) + _packed(2, (n, n * 10000000))
        if rng.random() < 0.7:
            t = rng.choice(traces)
            sample += _msg(3, _num(1, s("trace_id")) + _num(2, s(t)))
            sample += _msg(3, _num(1, s("span_id")) + _num(2, s(t[:16])))
        out += _msg(2, sample)
    out += _num(9, time_ns) + _num(10, 10 * 10**9)
    out += _msg(11, _num(1, s("cpu")) + _num(2, s("nanoseconds"))) + _num(12, 10000000)
    out += _num(14, s("cpu"))
    for x in strings:
        out += _msg(6, x.encode())
    return gzip.compress(bytes(out))


# ---- the collector --------------------------------------------------------------------

def start_collector(path, tmp):
    log = open(os.path.join(tmp, "collector.log"), "w+")
    proc = subprocess.Popen([path, "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "c.db"),
                             "--retention", "off", "--log", "info"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) ", log.read())
        if m:
            return proc, int(m.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    log.seek(0)
    raise CollectorBenchError("the collector did not start: " + log.read()[-500:])


def request(conn, method, path, body=None):
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise CollectorBenchError(f"{method} {path[:80]}: {r.status} {data[:200]!r}")
    return data


def ingest(port, bodies, total, clients):
    """Posts total profiles (bodies round-robin) from clients threads; returns seconds."""
    counter = iter(range(total))
    lock = threading.Lock()
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None or errors:
                    return
                request(conn, "POST", "/ingest?name=bench%7Benv%3Dbench%7D&format=pprof",
                        bodies[i % len(bodies)])
        except Exception as e:          # reported once, after every client stopped
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise CollectorBenchError(f"ingest: {errors[0]}")
    return time.monotonic() - started


def latency_ms(port, path):
    """Median of QUERIES GETs of path (after one warm-up), new connection each."""
    times = []
    for i in range(QUERIES + 1):
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            request(conn, "GET", path)
        finally:
            conn.close()
        if i:
            times.append((time.monotonic() - started) * 1000)
    return statistics.median(times), min(times), max(times)


def cpu_s(pid):
    """User + system CPU seconds of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verdict(ok):
    return "PASS" if ok else "FAIL"


def run(collector, tmp_parent=None):
    """Measures; returns the report's lines. Raises CollectorBenchError."""
    total = int(os.environ.get("BENCH_INGEST_PROFILES", "10000"))
    clients = int(os.environ.get("BENCH_INGEST_CLIENTS", "8"))
    if not os.path.exists(collector):
        raise CollectorBenchError(f"{collector} not found: run 'make bench'")
    rng = random.Random(7)
    now_ns = time.time_ns() - 60 * 10**9
    pool_traces = [["%032x" % rng.getrandbits(128) for _ in range(20)] for _ in range(POOL)]
    bodies = [make_profile(rng, now_ns + i * 10**6, pool_traces[i]) for i in range(POOL)]
    probe = "%032x" % rng.getrandbits(128)
    probe_body = make_profile(rng, now_ns, [probe] + pool_traces[0][1:])
    kib = statistics.median(len(b) for b in bodies) / 1024
    tmp = tempfile.mkdtemp(prefix="libprof-bench-collector.", dir=tmp_parent)
    proc, log = None, None
    try:
        proc, port, log = start_collector(collector, tmp)
        cpu_before = cpu_s(proc.pid)
        half = total // 2
        seconds = ingest(port, bodies, half, clients)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        request(conn, "POST", "/ingest?name=bench%7Benv%3Dbench%7D&format=pprof", probe_body)
        conn.close()
        seconds += ingest(port, bodies, total - half - 1, clients)
        rate = (total - 1) / seconds
        cpu_ms = (cpu_s(proc.pid) - cpu_before) / total * 1000
        q = f"/api/v1/profiles?service=bench&type=cpu&from=now-1h&trace_id={probe}"
        one = latency_ms(port, q)
        flame = latency_ms(port, q.replace("/profiles?", "/flamegraph?"))
        many = latency_ms(port, q.replace(probe, pool_traces[1][0]))
        db_mib = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
                     if f.startswith("c.db")) / 2**20
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        "collector: ingest and trace queries (build/libprof-collector, loopback, its defaults)",
        f"workload: {total} gzip pprof profiles of {kib:.0f} KiB (700 samples, 20 traces each, "
        f"a pool of {POOL} posted round-robin) from {clients} concurrent clients; "
        f"database {db_mib:.0f} MiB at the end",
        "",
        f"{'measure':<44} {'result':>14}   {'target':<16} result",
        f"{'ingest rate':<44} {f'{rate:.0f} /s':>14}   {f'>= {INGEST_TARGET:.0f} /s':<16} "
        f"{verdict(rate >= INGEST_TARGET)}",
        f"{'trace query, 10000 stored (median of 11)':<44} {f'{one[0]:.1f} ms':>14}   "
        f"{f'< {TRACE_TARGET_MS:.0f} ms':<16} {verdict(one[0] < TRACE_TARGET_MS)}",
        f"{'  the same trace as a flame graph (page)':<44} {f'{flame[0]:.1f} ms':>14}",
        f"{'  a trace found in 200 profiles':<44} {f'{many[0]:.1f} ms':>14}",
        f"{'collector CPU per profile ingested':<44} {f'{cpu_ms:.2f} ms':>14}",
        "",
        f"trace query: GET /api/v1/profiles?trace_id= of a trace in 1 stored profile (a request's "
        f"samples are in one 10 s profile), min {one[1]:.1f} ms, max {one[2]:.1f} ms; ingest "
        f"took {seconds:.1f} s (the clients share the machine's {os.cpu_count()} CPUs with the "
        f"collector: its CPU per profile is the figure that does not depend on them)",
    ]


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "build/libprof-collector"
    try:
        print("\n".join(run(path)))
    except CollectorBenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
