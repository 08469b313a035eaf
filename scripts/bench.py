#!/usr/bin/env python3
"""The libprof overhead benchmark; scripts/bench.sh runs it (`make bench`).

Four measurements, each a table, in this order:

cpu    CPU profiling: one fixed-work program (tests/progs/bench_cpu.c) without a
       profiler, under libprof and under gperftools' libprofiler, at 100 and 1000 Hz.
heap   Heap profiling: a malloc-heavy multi-threaded program
       (tests/progs/bench_alloc.c) without a profiler; under libprof at the default
       heap rate with CPU and lock profiling off; under libprof with every profile
       on (CPU at 100 Hz); under libprof with heap sampling off (its malloc
       wrappers then only call the allocator).
peers  Heap profilers compared, on the same program with 1/20 of the work and
       fewer rounds (gperftools' heap profiler takes some fifty times as long as
       the program alone): no profiler, libprof's heap profile, tcmalloc alone,
       tcmalloc with gperftools' heap profiler, heaptrack.
pair   The cost of one malloc+free pair (tests/progs/bench_malloc_pair.c, one
       thread, a tight loop), for blocks of 32 and 256 bytes: no profiler, libprof
       at the default heap rate, libprof with a rate so large that nothing is
       sampled; reported in ns per pair.

Within a table, configurations run interleaved, round-robin with the order
rotated each round, so that drift in the machine's speed falls on every
configuration alike; each gets one discarded warm-up run first. CPU time (user +
sys, every thread, the exporter included; plus about a millisecond for the two
small programs that start the workload, the same in every configuration) comes
from wait4; medians are reported.

Max RSS needs care: Linux carries the hiwater RSS of the image a process execs
from into its ru_maxrss, so a child spawned from this script would report at
least this script's ~14 MiB. The workload is therefore started through GNU
time, which forks it from its own ~1 MiB image and reports its %M.

What the peer rows measure:
- tcmalloc alone: LD_PRELOAD=libtcmalloc.so.4, which replaces the allocator; the
  gperftools row's own cost is its ratio to this row.
- gperftools heap: LD_PRELOAD=libtcmalloc.so.4 HEAPPROFILE=<dir>/heap, its other
  settings at their defaults (a dump per GiB allocated, and one at exit). It
  records every allocation and free, with its stack.
- heaptrack: what `heaptrack -o FILE prog` does (/usr/bin/heaptrack is a shell
  script), with its two halves measured apart. heaptrack_interpret reads a fifo
  and is piped into zstd (gzip when there is no zstd), as the script does, under
  a GNU time of its own; the workload runs with LD_PRELOAD=libheaptrack_preload.so
  and DUMP_HEAPTRACK_OUTPUT=<the fifo>. "heaptrack (workload)" is the workload
  process alone: the preload library records every allocation and free and
  writes them to the fifo. "heaptrack (whole)" adds the interpreter and the
  compressor, summed run by run: the whole heaptrack command less the work of
  its shell script (a few tens of ms of sed, readlink and the like).

collector  The embedded collector (build/libprof-collector): ingest rate and trace
       query latency with 10,000 profiles stored; scripts/bench_collector.py
       measures it and says how.

Every run's stdout must equal the unprofiled run's, every run must exit 0, and
every profiled run must leave its profile behind; otherwise the numbers would be
meaningless and the script exits 1. A missed target is reported, exit 0.

Environment: BENCH_SUITES (cpu heap peers pair collector), BENCH_ROUNDS (7), BENCH_HEAP_ROUNDS (15, the heap table),
BENCH_HEAP_TUNABLES (GLIBC_TUNABLES of the heap table's runs; see HEAP_TUNABLES),
BENCH_PEER_ROUNDS (3), BENCH_THREADS (2), BENCH_UNITS (bench_cpu's default),
BENCH_ALLOC_OPS (bench_alloc's default), BENCH_PEER_OPS (500000), BENCH_PAIRS
(bench_malloc_pair's default), BENCH_INGEST_PROFILES and BENCH_INGEST_CLIENTS
(bench_collector.py); paths, which bench.sh sets: BENCH_PROG, BENCH_COLLECTOR,
BENCH_ALLOC_PROG, BENCH_PAIR_PROG, BENCH_LIBPROF, BENCH_GPERFTOOLS,
BENCH_TCMALLOC, BENCH_HEAPTRACK_LIB, BENCH_TIME; BENCH_RESULTS
(build/bench-results.txt).
"""
import gzip
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

LOG_LINE = re.compile(r"exporter thread: (\d+) us CPU, (\d+) profiles written")
RATE_LINE = re.compile(r"heap every (\d+) bytes")
GPERF_LINE = re.compile(r"PROFILE: interrupts/evictions/bytes = (\d+)/(\d+)/(\d+)")
GPERF_HEAP_LINE = re.compile(r"^Dumping heap profile to ", re.M)
HEAPTRACK_LINE = re.compile(r"allocations:\s+(\d+)")
RSS_TARGET_MIB = 8.0
HEAP_TARGET_PCT = 5.0
PAIR_TARGET_NS = 10.0
PAIR_SIZES = (32, 256)
NO_SAMPLING_RATE = 1 << 30      # LIBPROF_HEAP_RATE's maximum: one sample per GiB
# The heap table's workload runs with glibc's mmap and trim thresholds fixed, in
# every configuration alike: with its dynamic thresholds, glibc trims and
# regrows its heaps as the threads' frees happen to fall, and the page faults
# that follow made a third of the unprofiled run's CPU time and most of its
# run-to-run noise (117k to 363k faults a run). Fixed, the workload spends its
# time in its own work and the allocator's, a smaller denominator for the same
# profiler cost. BENCH_HEAP_TUNABLES= (empty) runs it with glibc's defaults.
HEAP_TUNABLES = "glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=268435456"


class BenchError(Exception):
    pass


class Config:
    """One way of running the workload. kind: none, libprof, gperf (CPU profiler),
    tcmalloc, gperf-heap, heaptrack. env: libprof variables beyond the defaults of
    config_vars. expect: substrings of the names of files the run must leave."""
    def __init__(self, name, kind, hz=0, env=None, target_pct=None, rival=None, expect=(),
                 note=None):
        self.name, self.kind, self.hz, self.env = name, kind, hz, env or {}
        self.target_pct, self.rival, self.expect, self.note = target_pct, rival, expect, note
        self.cpu_s, self.rss_kib, self.exporter_us, self.profiles = [], [], [], []
        self.minflt = []            # minor page faults per run
        self.said = []              # what the profiler says it did, one number per run
        self.side_cpu_s, self.side_rss_kib = [], []     # heaptrack's interpreter half
        self.heap_rate = None       # libprof's, from its log


class Suite:
    """One table: a program, its arguments and the configurations to compare."""
    def __init__(self, key, prog, args, configs, rounds, env=None):
        self.key, self.prog, self.args = key, prog, args
        self.configs, self.rounds = configs, rounds
        self.env = env or {}        # for every configuration's workload alike
        self.reference = None       # the unprofiled run's stdout

    def argv(self):
        return [self.prog] + [str(a) for a in self.args]

    def by_name(self, name):
        return next(c for c in self.configs if c.name == name)


LP_HEAP_ONLY = {"LIBPROF_CPU_HZ": "0", "LIBPROF_MUTEX_RATE": "0"}


def cpu_configs():
    return [
        Config("none", "none"),
        Config("libprof 100 Hz", "libprof", 100, target_pct=1.0, rival="gperftools 100 Hz",
               expect=(".cpu.",)),
        Config("libprof 1000 Hz", "libprof", 1000, target_pct=2.0, rival="gperftools 1000 Hz",
               expect=(".cpu.",)),
        Config("gperftools 100 Hz", "gperf", 100, expect=("cpu.prof",)),
        Config("gperftools 1000 Hz", "gperf", 1000, expect=("cpu.prof",)),
    ]


def heap_configs():
    return [
        Config("none", "none"),
        Config("libprof heap", "libprof", env=LP_HEAP_ONLY, target_pct=HEAP_TARGET_PCT,
               expect=(".heap.",),
               note="LIBPROF_CPU_HZ=0 LIBPROF_MUTEX_RATE=0, default LIBPROF_HEAP_RATE"),
        Config("libprof all profiles", "libprof", 100, expect=(".cpu.", ".heap."),
               note="LIBPROF_CPU_HZ=100, every other variable at its default"),
        Config("libprof heap off", "libprof", env=dict(LP_HEAP_ONLY, LIBPROF_HEAP_RATE="0"),
               note="LIBPROF_HEAP_RATE=0 too: the malloc wrappers only call the allocator"),
    ]


def peer_configs():
    return [
        Config("none", "none"),
        Config("libprof heap", "libprof", env=LP_HEAP_ONLY, expect=(".heap.",)),
        Config("tcmalloc alone", "tcmalloc"),
        Config("gperftools heap", "gperf-heap", expect=(".heap",)),
        Config("heaptrack", "heaptrack", expect=("heaptrack.",)),
    ]


def pair_configs():
    return [
        Config("none", "none"),
        Config("libprof heap", "libprof", env=LP_HEAP_ONLY),
        Config("libprof, nothing sampled", "libprof",
               env=dict(LP_HEAP_ONLY, LIBPROF_HEAP_RATE=str(NO_SAMPLING_RATE))),
    ]


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = lo - 1
    if not lo <= v <= hi:
        raise BenchError(f"{name}={raw!r}: want a whole number from {lo} to {hi}")
    return v


def clean_env():
    """The caller's environment without anything that would profile the child."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIBPROF_", "CPUPROFILE", "HEAPPROFILE", "HEAP_PROFILE",
                                "DUMP_HEAPTRACK", "OTEL_")) and k != "LD_PRELOAD"}
    return env


def config_vars(cfg, run_dir, paths):
    """The variables that turn the profiler on, for the workload only."""
    env = {}
    if cfg.kind == "libprof":
        env.update(LD_PRELOAD=paths["libprof"], LIBPROF_CPU_HZ=str(cfg.hz),
                   LIBPROF_INTERVAL="1", LIBPROF_LOG="info", LIBPROF_OUTPUT_DIR=run_dir)
        env.update(cfg.env)
    elif cfg.kind == "gperf":
        env.update(LD_PRELOAD=paths["gperf"], CPUPROFILE=os.path.join(run_dir, "cpu.prof"),
                   CPUPROFILE_FREQUENCY=str(cfg.hz))
    elif cfg.kind == "tcmalloc":
        env.update(LD_PRELOAD=paths["tcmalloc"])
    elif cfg.kind == "gperf-heap":
        env.update(LD_PRELOAD=paths["tcmalloc"], HEAPPROFILE=os.path.join(run_dir, "heap"))
    elif cfg.kind == "heaptrack":
        env.update(LD_PRELOAD=os.path.join(paths["heaptrack"], "libheaptrack_preload.so"),
                   DUMP_HEAPTRACK_OUTPUT=os.path.join(run_dir, "fifo"))
    return env


def spawn(argv, env, out_path, err_path):
    """Starts argv with stdin from /dev/null and stdout/stderr to files; returns its pid."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o600)]
    return os.posix_spawn(argv[0], argv, env, file_actions=actions)


def wait(pid):
    """(exit code, rusage of pid and its children)."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def tail(text, n=15):
    return "\n".join("    " + line for line in text.rstrip("\n").split("\n")[-n:])


def start_heaptrack_reader(run_dir, paths, base_env, tmp):
    """heaptrack's other half, as /usr/bin/heaptrack starts it: heaptrack_interpret
    reading the fifo, piped into the compressor, under GNU time. Returns its pid."""
    os.mkfifo(os.path.join(run_dir, "fifo"), 0o600)
    compressor = shutil.which("zstd") or shutil.which("gzip")
    out = os.path.join(run_dir, "heaptrack." + ("zst" if compressor.endswith("zstd") else "gz"))
    argv = [paths["time"], "-o", os.path.join(tmp, "side-maxrss"), "-f", "%M",
            "/bin/sh", "-c", '"$1" < "$2" | "$3" -c > "$4"', "sh",
            os.path.join(paths["heaptrack"], "libexec", "heaptrack_interpret"),
            os.path.join(run_dir, "fifo"), compressor, out]
    return spawn(argv, base_env, os.devnull, os.path.join(tmp, "side-stderr"))


def finish_heaptrack_reader(pid, run_dir, workload_failed, what, tmp):
    """Waits for the reader; returns (CPU s, max RSS KiB, allocations it counted)."""
    if workload_failed:
        # A workload that died before opening the fifo leaves the reader blocked
        # in open(): give it a writer that goes away at once.
        try:
            os.close(os.open(os.path.join(run_dir, "fifo"), os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    code, usage = wait(pid)
    err = read(os.path.join(tmp, "side-stderr"))
    m = HEAPTRACK_LINE.search(err)
    if code != 0 or not m:
        raise BenchError(f"{what}: heaptrack_interpret failed (status {code}); its stderr:\n"
                         f"{tail(err)}")
    return (usage.ru_utime + usage.ru_stime,
            int(read(os.path.join(tmp, "side-maxrss")).split()[-1]), int(m.group(1)))


def profiler_numbers(cfg, what, err, run_dir):
    """What the profiler says it did: (exporter us, profiles) for libprof, (count,) for
    gperftools (samples, or heap dumps). Raises when it left no profile behind."""
    names = os.listdir(run_dir)
    missing = [e for e in cfg.expect if not any(e in n for n in names)]
    if missing:
        raise BenchError(f"{what}: no {' or '.join(missing)} file written (only "
                         f"{', '.join(sorted(names)) or 'nothing'}); its stderr:\n{tail(err)}")
    if cfg.kind == "libprof":
        m = LOG_LINE.search(err)
        if not m:
            raise BenchError(f"{what}: libprof did not log what it did; its stderr:\n"
                             f"{tail(err)}")
        rate = RATE_LINE.search(err)
        cfg.heap_rate = int(rate.group(1)) if rate else None
        return int(m.group(1)), int(m.group(2))
    if cfg.kind == "gperf":
        m = GPERF_LINE.search(err)
        if not m:
            raise BenchError(f"{what}: gperftools did not log its samples; its stderr:\n"
                             f"{tail(err)}")
        return (int(m.group(1)),)
    if cfg.kind == "gperf-heap":
        return (len(GPERF_HEAP_LINE.findall(err)),)
    return ()


def run_once(suite, cfg, tag, base_env, tmp, paths):
    """One run of cfg; records its numbers unless tag is 'warmup'. Returns its stdout."""
    run_dir = os.path.join(tmp, f"{suite.key}-{suite.configs.index(cfg)}-{tag}")
    os.mkdir(run_dir)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    rss_path = os.path.join(tmp, "maxrss")
    what = f"{suite.key}: {cfg.name} ({tag})"
    reader = start_heaptrack_reader(run_dir, paths, base_env, tmp) \
        if cfg.kind == "heaptrack" else None
    # time -> env -> workload: the profiler is preloaded into the workload only.
    wrapped = [paths["time"], "-o", rss_path, "-f", "%M", "/usr/bin/env"] + \
        [f"{k}={v}" for k, v in {**suite.env, **config_vars(cfg, run_dir, paths)}.items()] + \
        suite.argv()
    code, usage = wait(spawn(wrapped, base_env, out_path, err_path))
    side = finish_heaptrack_reader(reader, run_dir, code != 0, what, tmp) if reader else None
    out, err = read(out_path), read(err_path)
    if code != 0:
        raise BenchError(f"{what}: the workload exited with status {code}; its stderr:\n{tail(err)}")
    if suite.reference is not None and out != suite.reference:
        raise BenchError(f"{what}: stdout differs from the unprofiled run's:\n"
                         f"  none: {suite.reference!r}\n  this: {out!r}")
    numbers = profiler_numbers(cfg, what, err, run_dir)
    shutil.rmtree(run_dir)
    if tag != "warmup":
        cfg.cpu_s.append(usage.ru_utime + usage.ru_stime)
        cfg.minflt.append(usage.ru_minflt)
        cfg.rss_kib.append(int(read(rss_path).split()[-1]))
        if cfg.kind == "libprof":
            cfg.exporter_us.append(numbers[0])
            cfg.profiles.append(numbers[1])
        elif numbers:
            cfg.said.append(numbers[0])
        if side:
            cfg.side_cpu_s.append(side[0])
            cfg.side_rss_kib.append(side[1])
            cfg.said.append(side[2])
    return out


def measure(suite, paths, tmp):
    base_env = clean_env()
    started = time.monotonic()
    suite.reference = run_once(suite, suite.configs[0], "warmup", base_env, tmp, paths)
    for cfg in suite.configs[1:]:
        run_once(suite, cfg, "warmup", base_env, tmp, paths)
    n = len(suite.configs)
    for r in range(suite.rounds):
        order = suite.configs[r % n:] + suite.configs[:r % n]
        print(f"bench: {suite.key}: round {r + 1}/{suite.rounds}", file=sys.stderr, flush=True)
        for cfg in order:
            run_once(suite, cfg, f"r{r}", base_env, tmp, paths)
    print(f"bench: {suite.key}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def spread_pct(values):
    """Half the interquartile range, as a percentage of the median: the noise."""
    return spread(values) / statistics.median(values) * 100


def spread(values):
    """Half the interquartile range (half the range below 4 values)."""
    if len(values) < 4:
        return (max(values) - min(values)) / 2
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2


def kernel_hz():
    """The kernel's tick rate from its build configuration, or None."""
    for path, opener in ((f"/boot/config-{os.uname().release}", open),
                         ("/proc/config.gz", gzip.open)):
        try:
            with opener(path, "rt") as f:
                m = re.search(r"^CONFIG_HZ=(\d+)$", f.read(), re.M)
        except OSError:
            continue
        if m:
            return int(m.group(1))
    return None


def median_cpu(cfg):
    return statistics.median(cfg.cpu_s)


def overhead_pct(cfg, base):
    return (median_cpu(cfg) / base - 1) * 100


def paired_pct(cfg, none):
    """The median over rounds of each round's overhead against that round's
    unprofiled run: runs of one round are back to back, so a drift of the
    machine's state (other load, the allocator's trimming) cancels out."""
    return statistics.median((c / n - 1) * 100 for c, n in zip(cfg.cpu_s, none.cpu_s))


def fast_pct(cfg, none):
    """The overhead of the configuration's fastest quarter of runs (lower
    quartile) over the unprofiled runs' own: interference from outside (a
    virtual machine's host, a neighbour's load) only ever adds CPU time, so the
    lower quartiles are a second view of each configuration's undisturbed cost
    beside the paired median (shown, not judged: with bimodal runs, 2.4 s and
    5.5 s for the same work, neither is steady)."""
    return (lower_quartile(cfg.cpu_s) / lower_quartile(none.cpu_s) - 1) * 100


def lower_quartile(values):
    return statistics.quantiles(values, n=4)[0] if len(values) >= 4 else min(values)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def rounds_line(suite):
    text = (f"{suite.rounds} rounds interleaved after one warm-up run each; medians of the "
            "workload's CPU time (user+sys, all threads); paired: the median of each round's "
            "overhead against that round's run without profiler; fast q: the overhead of the "
            "lower quartiles (each configuration's fastest quarter of runs against the "
            "unprofiled run's); noise: half the interquartile range")
    if suite.env:
        text += "; for every configuration: " + " ".join(f"{k}={v}" for k, v in suite.env.items())
    return text


def overhead_table(suite, base):
    none = suite.configs[0]
    lines = [f"{'configuration':<20} {'CPU s':>7} {'ratio':>6} {'overhead':>9} {'paired':>8} "
             f"{'fast q':>8} {'noise':>6}   {'target (on paired)':<31} result"]
    for c in suite.configs:
        over, paired, fast = overhead_pct(c, base), paired_pct(c, none), fast_pct(c, none)
        row = (f"{c.name:<20} {median_cpu(c):7.3f} {1 + over / 100:6.3f} "
               f"{'-' if c.kind == 'none' else f'{over:+.2f}%':>9} "
               f"{'-' if c.kind == 'none' else f'{paired:+.2f}%':>8} "
               f"{'-' if c.kind == 'none' else f'{fast:+.2f}%':>8} {spread_pct(c.cpu_s):5.2f}%")
        if c.target_pct is None:
            lines.append(row)
            continue
        lines.append(f"{row}   {f'overhead <= {c.target_pct:.0f}%':<31} "
                     f"{verdict(paired <= c.target_pct)}")
        if c.rival:
            rival = paired_pct(suite.by_name(c.rival), none)
            lines.append(f"{'':<{len(row)}}   {f'<= {c.rival} ({rival:+.2f}%)':<31} "
                         f"{verdict(paired <= rival)} ({paired - rival:+.2f} pt)")
    return lines


def memory_lines(suite):
    none_kib = statistics.median(suite.configs[0].rss_kib)
    lines = [f"resident memory: median max RSS added to the unprofiled run's "
             f"{none_kib / 1024:.1f} MiB"]
    for c in suite.configs[1:]:
        extra = (statistics.median(c.rss_kib) - none_kib) / 1024
        target = (f"target < {RSS_TARGET_MIB:.0f} MiB   {verdict(extra < RSS_TARGET_MIB)}"
                  if c.kind == "libprof" else "(reference)")
        lines.append(f"  {c.name:<20} {extra:+7.1f} MiB   {target}")
    return lines


def exporter_lines(suite, base, rest_what):
    lines = ["libprof's exporter thread (median per run; part of the CPU time above):"]
    for c in suite.configs:
        if c.kind != "libprof":
            continue
        ms = statistics.median(c.exporter_us) / 1000
        rest = statistics.median(t - e / 1e6 for t, e in zip(c.cpu_s, c.exporter_us))
        lines.append(f"  {c.name:<20} {ms:6.1f} ms CPU ({ms / 10 / base:+.2f}%), "
                     f"{statistics.median(c.profiles):.0f} profiles written; everything else "
                     f"({rest_what}) {(rest / base - 1) * 100:+.2f}%")
    for c in suite.configs:
        if c.kind == "gperf":
            lines.append(f"  {c.name:<20} took {statistics.median(c.said):.0f} "
                         "samples (its own count)")
    return lines


def cpu_report(suite):
    base = median_cpu(suite.configs[0])
    lines = [f"workload: {suite.reference.strip()}", rounds_line(suite), ""]
    lines += overhead_table(suite, base) + [""] + memory_lines(suite) + [""] + \
        exporter_lines(suite, base, "signals, unwinding")
    hz = kernel_hz()
    if hz and hz < max(c.hz for c in suite.configs):
        lines += ["", f"note: CONFIG_HZ={hz}: CPU-time timers expire at most once per tick, so "
                  f"'1000 Hz' means about {hz} signals per CPU-second per thread for libprof"
                  " (it weights each sample by the timer's overrun count), and gperftools' "
                  "process-wide timer takes fewer."]
    return lines


def heap_report(suite):
    base = median_cpu(suite.configs[0])
    lines = ["heap profiling: a malloc-heavy multi-threaded workload (tests/progs/bench_alloc.c)",
             f"workload: {suite.reference.strip()}", rounds_line(suite), ""]
    lines += overhead_table(suite, base)
    lines += [f"  {c.name}: {c.note}" for c in suite.configs if c.note]
    lines += [""] + memory_lines(suite) + [""] + \
        exporter_lines(suite, base, "wrappers, sampling, unwinding")
    return lines + [""] + fault_lines(suite)


def fault_lines(suite):
    """The allocator's page faults: they vary from run to run whatever the
    configuration (glibc trims and regrows its heaps as the threads' frees
    happen to fall), and each costs a few microseconds, user and system time
    together: the main source of this table's noise."""
    every = [f for c in suite.configs for f in c.minflt]
    medians = ", ".join(f"{c.name} {statistics.median(c.minflt) / 1000:.0f}k"
                        for c in suite.configs)
    return [f"minor page faults per run (median): {medians}; from "
            f"{min(every) / 1000:.0f}k to {max(every) / 1000:.0f}k over all runs "
            + ("(glibc's thresholds fixed: its heaps are not trimmed and regrown)"
               if suite.env.get("GLIBC_TUNABLES") else
               "(glibc trimming its heaps: the main source of noise above)")]


def peers_report(suite, full_suite):
    none = suite.configs[0]
    base, none_kib = median_cpu(none), statistics.median(none.rss_kib)
    size = (f"{suite.args[1]} ops per thread, 1/{full_suite.args[1] // suite.args[1]} of the "
            "workload above" if full_suite and full_suite.args[1] > suite.args[1]
            else f"{suite.args[1]} ops per thread")
    gperf = suite.by_name("gperftools heap")
    lines = [f"heap profilers compared on the same workload with {size}: gperftools' heap "
             f"profiler makes it take {median_cpu(gperf) / base:.0f} times as long",
             f"workload: {suite.reference.strip()}", rounds_line(suite), "",
             f"{'configuration':<22} {'CPU s':>8} {'ratio':>7} {'noise':>6}   "
             f"{'max RSS added':>13}   measures"]

    def row(name, cpu, noise, rss_added, what):
        rss = "-" if rss_added is None else f"{rss_added / 1024:+.1f} MiB"
        return (f"{name:<22} {cpu:8.3f} {cpu / base:7.2f} {noise:5.2f}%   {rss:>13}   {what}")

    for c in suite.configs:
        rss_added = None if c.kind == "none" else statistics.median(c.rss_kib) - none_kib
        if c.kind == "heaptrack":
            lines.append(row("heaptrack (workload)", median_cpu(c), spread_pct(c.cpu_s),
                             rss_added, "the workload process, libheaptrack_preload.so in it"))
            whole = [a + b for a, b in zip(c.cpu_s, c.side_cpu_s)]
            side_mib = statistics.median(c.side_rss_kib) / 1024
            lines.append(row("heaptrack (whole)", statistics.median(whole), spread_pct(whole),
                             None, f"+ heaptrack_interpret and its compressor "
                             f"(their max RSS: {side_mib:.0f} MiB more)"))
            continue
        what = {"none": "the workload alone",
                "libprof": "LIBPROF_CPU_HZ=0 LIBPROF_MUTEX_RATE=0, default heap rate",
                "tcmalloc": "LD_PRELOAD=libtcmalloc.so.4: another allocator, no profiler",
                "gperf-heap": "tcmalloc + HEAPPROFILE: "
                              f"{median_cpu(c) / median_cpu(suite.by_name('tcmalloc alone')):.1f}"
                              " x tcmalloc alone"}[c.kind]
        lines.append(row(c.name, median_cpu(c), spread_pct(c.cpu_s), rss_added, what))
    notes = []
    for c in suite.configs:
        if c.kind == "libprof":
            notes.append(f"libprof's exporter thread: {statistics.median(c.exporter_us) / 1000:.1f}"
                         " ms per run (with its start-up, a fixed cost that weighs more on a "
                         "short run)")
        elif c.kind == "gperf-heap":
            notes.append(f"gperftools wrote {statistics.median(c.said):.0f} heap dumps per run")
        elif c.kind == "heaptrack":
            notes.append(f"heaptrack recorded {statistics.median(c.said):.0f} allocations per "
                         "run (its interpreter's count)")
    return lines + [""] + notes


def pair_report(suites):
    first = suites[0]
    lines = ["malloc+free pair micro-benchmark (tests/progs/bench_malloc_pair.c): one thread, "
             "malloc(size) and free at once, in a loop",
             f"workload: {'; '.join(s.reference.strip() for s in suites)}",
             f"{first.rounds} rounds interleaved after one warm-up run each; added ns per pair: "
             "(median CPU time of the configuration - median without a profiler) / pairs; "
             "noise: half the interquartile range of the per-round differences", "",
             f"{'size':<6} {'none':>9}   {'configuration':<26} {'added':>10} {'noise':>8}   "
             f"{'target':<22} result"]
    sample_costs = []
    for s in suites:
        size, none = s.args[0], s.configs[0]
        n = int(re.search(r"(\d+) malloc", s.reference).group(1))    # pairs, as it says
        base = median_cpu(none)
        label = f"{size} B"
        for c in s.configs[1:]:
            added_ns = (median_cpu(c) - base) / n * 1e9
            diffs = [(a - b) / n * 1e9 for a, b in zip(c.cpu_s, none.cpu_s)]
            none_ns = f"{base / n * 1e9:.1f} ns" if label else ""
            row = (f"{label:<6} {none_ns:>9}   {c.name:<26} "
                   f"{f'{added_ns:+.2f} ns':>10} {f'{spread(diffs):.2f} ns':>8}")
            label = ""
            if c.env.get("LIBPROF_HEAP_RATE"):
                lines.append(row)
                continue
            rate = c.heap_rate or 524288
            lines.append(f"{row}   {f'<= {PAIR_TARGET_NS:.0f} ns per pair':<22} "
                         f"{verdict(added_ns <= PAIR_TARGET_NS)}")
            nothing = s.by_name("libprof, nothing sampled")
            n_samples = n * size / rate
            extra_s = median_cpu(c) - median_cpu(nothing)
            noise_s = spread([a - b for a, b in zip(c.cpu_s, nothing.cpu_s)])
            sample_costs.append(f"{size} B: one pair in {rate / size:.0f} sampled, "
                                f"{n_samples:.0f} samples per run, "
                                f"{extra_s / n_samples * 1e6:.1f} us each"
                                + (" (within the noise)" if abs(extra_s) < 2 * noise_s else ""))
    lines += ["", f"'nothing sampled' runs libprof with LIBPROF_HEAP_RATE={NO_SAMPLING_RATE} "
              "(the unsampled path alone); the default rate adds sampled allocations, costing "
              "(difference of the two libprof rows) / (expected samples):"]
    lines += [f"  {line}" for line in sample_costs]
    return lines


def report(suites, build):
    by_key = {s.key: s for s in suites}
    sections = []
    if "cpu" in by_key:
        sections.append(cpu_report(by_key["cpu"]))
    if "heap" in by_key:
        sections.append(heap_report(by_key["heap"]))
    if "peers" in by_key:
        sections.append(peers_report(by_key["peers"], by_key.get("heap")))
    pair = [s for s in suites if s.key.startswith("pair")]
    if pair:
        sections.append(pair_report(pair))
    lines = [f"libprof overhead benchmark ({build})"] + ([] if "cpu" in by_key else [""])
    for i, section in enumerate(sections):
        lines += ([] if i == 0 else ["", ""]) + section
    lines += ["", "stdout was identical to the unprofiled run's in every run of every "
              "configuration."]
    return "\n".join(lines) + "\n"


# ---- the collector's rows (scripts/bench_collector.py) ----------------------------------

def collector_rows(paths, tmp):
    """The collector's table when BENCH_SUITES asks for it (by default it does), as
    text to append to the report; "" otherwise."""
    if "collector" not in os.environ.get("BENCH_SUITES", "cpu heap peers pair collector").split():
        return ""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_collector
    print("bench: collector: ingest, then trace queries", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        lines = bench_collector.run(paths["collector"], tmp)
    except bench_collector.CollectorBenchError as e:
        raise BenchError(f"collector: {e}") from e
    print(f"bench: collector: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return "\n\n" + "\n".join(lines) + "\n"


def copy_to(path, bin_dir):
    """A copy to measure: the linker rewrites build/ files in place, and a rebuild
    during the benchmark would crash the runs that have them mapped."""
    return shutil.copy2(path, bin_dir)


def make_suites(paths, bin_dir):
    rounds = env_int("BENCH_ROUNDS", 7, 1, 1000)
    heap_rounds = env_int("BENCH_HEAP_ROUNDS", 15, 1, 1000)
    peer_rounds = env_int("BENCH_PEER_ROUNDS", 3, 1, 1000)
    threads = env_int("BENCH_THREADS", 2, 1, 64)
    units = env_int("BENCH_UNITS", 0, 0, 10**9)
    ops = env_int("BENCH_ALLOC_OPS", 10000000, 1, 10**9)
    peer_ops = env_int("BENCH_PEER_OPS", 500000, 1, 10**9)
    pairs = env_int("BENCH_PAIRS", 0, 0, 10**11)
    wanted = os.environ.get("BENCH_SUITES", "cpu heap peers pair collector").split()
    unknown = set(wanted) - {"cpu", "heap", "peers", "pair", "collector"}
    if unknown:
        raise BenchError(f"BENCH_SUITES: unknown {' '.join(sorted(unknown))} "
                         "(want some of: cpu heap peers pair collector)")
    needs = {"cpu": ("cpu_prog", "libprof", "gperf"), "heap": ("alloc_prog", "libprof"),
             "peers": ("alloc_prog", "libprof", "tcmalloc", "heaptrack"),
             "pair": ("pair_prog", "libprof"), "collector": ("collector",)}
    for key in sorted({k for w in wanted for k in needs[w]} | {"time"}):
        if not paths[key] or not os.path.exists(paths[key]):
            raise BenchError(f"{key} not found: {paths[key] or '(not set)'}")
    for key in ("libprof", "cpu_prog", "alloc_prog", "pair_prog"):
        if any(key in needs[w] for w in wanted):
            paths[key] = copy_to(paths[key], bin_dir)
    suites = []
    if "cpu" in wanted:
        suites.append(Suite("cpu", paths["cpu_prog"], [threads] + ([units] if units else []),
                            cpu_configs(), rounds))
    if "heap" in wanted:
        tunables = os.environ.get("BENCH_HEAP_TUNABLES", HEAP_TUNABLES)
        suites.append(Suite("heap", paths["alloc_prog"], [threads, ops], heap_configs(),
                            heap_rounds, {"GLIBC_TUNABLES": tunables} if tunables else None))
    if "peers" in wanted:
        suites.append(Suite("peers", paths["alloc_prog"], [threads, peer_ops], peer_configs(),
                            peer_rounds))
    if "pair" in wanted:
        for size in PAIR_SIZES:
            suites.append(Suite(f"pair{size}", paths["pair_prog"],
                                [size] + ([pairs] if pairs else []), pair_configs(), rounds))
    return suites


def main():
    here = os.environ.get
    paths = {"libprof": os.path.abspath(here("BENCH_LIBPROF", "build/libprof.so")),
             "cpu_prog": os.path.abspath(here("BENCH_PROG", "build/progs/bench_cpu")),
             "alloc_prog": os.path.abspath(here("BENCH_ALLOC_PROG", "build/progs/bench_alloc")),
             "pair_prog": os.path.abspath(here("BENCH_PAIR_PROG",
                                               "build/progs/bench_malloc_pair")),
             "gperf": here("BENCH_GPERFTOOLS", "/usr/lib/x86_64-linux-gnu/libprofiler.so"),
             "tcmalloc": here("BENCH_TCMALLOC", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"),
             "heaptrack": here("BENCH_HEAPTRACK_LIB", "/usr/lib/heaptrack"),
             "time": here("BENCH_TIME", "/usr/bin/time"),
             "collector": os.path.abspath(here("BENCH_COLLECTOR", "build/libprof-collector"))}
    results = here("BENCH_RESULTS", "build/bench-results.txt")
    tmp = tempfile.mkdtemp(prefix="libprof-bench.")
    try:
        os.mkdir(os.path.join(tmp, "bin"))
        suites = make_suites(paths, os.path.join(tmp, "bin"))
        for suite in suites:
            measure(suite, paths, tmp)
        collector_lines = collector_rows(paths, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(suites, here("BENCH_BUILD", "build/libprof.so")) + collector_lines
    sys.stdout.write(text)
    sys.stdout.flush()
    with open(results, "w") as f:
        f.write(text)
        f.write("\nper-run CPU seconds, in round order:\n")
        for s in suites:
            for c in s.configs:
                f.write(f"  {s.key + ': ' + c.name:<32} {' '.join(f'{t:.3f}' for t in c.cpu_s)}\n")
                if c.side_cpu_s:
                    f.write(f"  {s.key + ': ' + c.name + ' (interpreter)':<32} "
                            f"{' '.join(f'{t:.3f}' for t in c.side_cpu_s)}\n")
    print(f"bench: tables written to {results}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
