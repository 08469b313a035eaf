#!/usr/bin/env python3
"""The libprof overhead benchmark; scripts/bench.sh runs it (`make bench`).

Runs one fixed-work program (tests/progs/bench_cpu.c) without a profiler, under
libprof and under gperftools' libprofiler, at 100 and 1000 Hz. Configurations
run interleaved, round-robin with the order rotated each round, so that drift
in the machine's speed falls on every configuration alike; each gets one
discarded warm-up run first. CPU time (user + sys, every thread, the exporter
included; plus about a millisecond for the two small programs that start the
workload, the same in every configuration) comes from wait4; medians are
reported.

Max RSS needs care: Linux carries the hiwater RSS of the image a process execs
from into its ru_maxrss, so a child spawned from this script would report at
least this script's ~14 MiB. The workload is therefore started through GNU
time, which forks it from its own ~1 MiB image and reports its %M.

Every run's stdout must equal the unprofiled run's, every run must exit 0, and
every profiled run must leave a profile behind; otherwise the numbers would be
meaningless and the script exits 1. A missed target is reported, exit 0.

Environment: BENCH_ROUNDS (7), BENCH_THREADS (2), BENCH_UNITS (the program's
default), BENCH_PROG, BENCH_LIBPROF, BENCH_GPERFTOOLS, BENCH_TIME (paths; bench.sh
sets them), BENCH_RESULTS (build/bench-results.txt).
"""
import gzip
import os
import re
import shutil
import statistics
import sys
import tempfile

LOG_LINE = re.compile(r"exporter thread: (\d+) us CPU, (\d+) profiles written")
GPERF_LINE = re.compile(r"PROFILE: interrupts/evictions/bytes = (\d+)/(\d+)/(\d+)")
RSS_TARGET_MIB = 8.0


class BenchError(Exception):
    pass


class Config:
    def __init__(self, name, kind, hz, target_pct=None, rival=None):
        self.name, self.kind, self.hz = name, kind, hz
        self.target_pct, self.rival = target_pct, rival
        self.cpu_s, self.rss_kib, self.exporter_us, self.profiles = [], [], [], []
        self.gperf_interrupts = []


CONFIGS = [
    Config("none", "none", 0),
    Config("libprof 100 Hz", "libprof", 100, 1.0, "gperftools 100 Hz"),
    Config("libprof 1000 Hz", "libprof", 1000, 2.0, "gperftools 1000 Hz"),
    Config("gperftools 100 Hz", "gperf", 100),
    Config("gperftools 1000 Hz", "gperf", 1000),
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
           if not k.startswith(("LIBPROF_", "CPUPROFILE", "OTEL_")) and k != "LD_PRELOAD"}
    return env


def config_vars(cfg, run_dir, paths):
    """The variables that turn the profiler on, for the workload only."""
    env = {}
    if cfg.kind == "libprof":
        env.update(LD_PRELOAD=paths["libprof"], LIBPROF_CPU_HZ=str(cfg.hz),
                   LIBPROF_INTERVAL="1", LIBPROF_LOG="info", LIBPROF_OUTPUT_DIR=run_dir)
    elif cfg.kind == "gperf":
        env.update(LD_PRELOAD=paths["gperf"], CPUPROFILE=os.path.join(run_dir, "cpu.prof"),
                   CPUPROFILE_FREQUENCY=str(cfg.hz))
    return env


def spawn_and_wait(argv, env, out_path, err_path):
    """Runs argv with stdin from /dev/null and stdout/stderr to files;
    returns (exit code, rusage of it and its children)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, out_path, flags, 0o600),
               (os.POSIX_SPAWN_OPEN, 2, err_path, flags, 0o600)]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def tail(text, n=15):
    return "\n".join("    " + line for line in text.rstrip("\n").split("\n")[-n:])


def profiler_numbers(cfg, what, err, run_dir):
    """What the profiler says it did: (exporter us, profiles) for libprof, (interrupts,)
    for gperftools. Raises when it left no profile behind."""
    if cfg.kind == "none":
        return ()
    m = (LOG_LINE if cfg.kind == "libprof" else GPERF_LINE).search(err)
    if not m or not os.listdir(run_dir):
        raise BenchError(f"{what}: {cfg.kind} wrote no profile (or did not log what it did); "
                         f"its stderr:\n{tail(err)}")
    return (int(m.group(1)), int(m.group(2))) if cfg.kind == "libprof" else (int(m.group(1)),)


def run_once(cfg, tag, argv, base_env, tmp, paths, reference):
    """One run of cfg; records its numbers unless tag is 'warmup'. Returns its stdout."""
    run_dir = os.path.join(tmp, f"{cfg.kind}-{cfg.hz}-{tag}")
    os.mkdir(run_dir)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    rss_path = os.path.join(tmp, "maxrss")
    # time -> env -> workload: the profiler is preloaded into the workload only.
    wrapped = [paths["time"], "-o", rss_path, "-f", "%M", "/usr/bin/env"] + \
        [f"{k}={v}" for k, v in config_vars(cfg, run_dir, paths).items()] + argv
    code, usage = spawn_and_wait(wrapped, base_env, out_path, err_path)
    out, err = read(out_path), read(err_path)
    what = f"{cfg.name} ({tag})"
    if code != 0:
        raise BenchError(f"{what}: the workload exited with status {code}; its stderr:\n{tail(err)}")
    if reference is not None and out != reference:
        raise BenchError(f"{what}: stdout differs from the unprofiled run's:\n"
                         f"  none: {reference!r}\n  this: {out!r}")
    numbers = profiler_numbers(cfg, what, err, run_dir)
    shutil.rmtree(run_dir)
    if tag != "warmup":
        cfg.cpu_s.append(usage.ru_utime + usage.ru_stime)
        cfg.rss_kib.append(int(read(rss_path).split()[-1]))
        if cfg.kind == "libprof":
            cfg.exporter_us.append(numbers[0])
            cfg.profiles.append(numbers[1])
        elif cfg.kind == "gperf":
            cfg.gperf_interrupts.append(numbers[0])
    return out


def measure(argv, rounds, paths, tmp):
    base_env = clean_env()
    none = CONFIGS[0]
    reference = run_once(none, "warmup", argv, base_env, tmp, paths, None)
    for cfg in CONFIGS[1:]:
        run_once(cfg, "warmup", argv, base_env, tmp, paths, reference)
    for r in range(rounds):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
        print(f"bench: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        for cfg in order:
            run_once(cfg, f"r{r}", argv, base_env, tmp, paths, reference)
    return reference


def spread_pct(values):
    """Half the interquartile range, as a percentage of the median: the noise."""
    if len(values) < 4:
        return (max(values) - min(values)) / 2 / statistics.median(values) * 100
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(values) * 100


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


def overhead_pct(cfg, base):
    return (statistics.median(cfg.cpu_s) / base - 1) * 100


def verdict(ok):
    return "PASS" if ok else "FAIL"


def cpu_table(base):
    by_name = {c.name: c for c in CONFIGS}
    lines = [f"{'configuration':<20} {'CPU s':>7} {'ratio':>6} {'overhead':>9} {'noise':>6}   "
             f"{'target':<31} result"]
    for c in CONFIGS:
        over = overhead_pct(c, base)
        row = (f"{c.name:<20} {statistics.median(c.cpu_s):7.3f} {1 + over / 100:6.3f} "
               f"{'-' if c.kind == 'none' else f'{over:+.2f}%':>9} {spread_pct(c.cpu_s):5.2f}%")
        if c.target_pct is None:
            lines.append(row)
            continue
        rival = overhead_pct(by_name[c.rival], base)
        lines.append(f"{row}   {f'overhead <= {c.target_pct:.0f}%':<31} "
                     f"{verdict(over <= c.target_pct)}")
        lines.append(f"{'':<{len(row)}}   {f'<= {c.rival} ({rival:+.2f}%)':<31} "
                     f"{verdict(over <= rival)} ({over - rival:+.2f} pt)")
    return lines


def memory_lines():
    none_kib = statistics.median(CONFIGS[0].rss_kib)
    lines = [f"resident memory: median max RSS added to the unprofiled run's "
             f"{none_kib / 1024:.1f} MiB"]
    for c in CONFIGS[1:]:
        extra = (statistics.median(c.rss_kib) - none_kib) / 1024
        target = (f"target < {RSS_TARGET_MIB:.0f} MiB   {verdict(extra < RSS_TARGET_MIB)}"
                  if c.kind == "libprof" else "(reference)")
        lines.append(f"  {c.name:<20} {extra:+7.1f} MiB   {target}")
    return lines


def exporter_lines(base):
    lines = ["libprof's exporter thread (median per run; part of the CPU time above):"]
    for c in CONFIGS:
        if c.kind != "libprof":
            continue
        ms = statistics.median(c.exporter_us) / 1000
        rest = statistics.median(t - e / 1e6 for t, e in zip(c.cpu_s, c.exporter_us))
        lines.append(f"  {c.name:<20} {ms:6.1f} ms CPU ({ms / 10 / base:+.2f}%), "
                     f"{statistics.median(c.profiles):.0f} profiles written; everything else "
                     f"(signals, unwinding) {(rest / base - 1) * 100:+.2f}%")
    for c in CONFIGS:
        if c.kind == "gperf":
            lines.append(f"  {c.name:<20} took {statistics.median(c.gperf_interrupts):.0f} "
                         "samples (its own count)")
    return lines


def report(rounds, reference, build):
    base = statistics.median(CONFIGS[0].cpu_s)
    lines = [f"libprof overhead benchmark ({build})",
             f"workload: {reference.strip()}",
             f"{rounds} rounds interleaved after one warm-up run each; medians of the "
             "workload's CPU time (user+sys, all threads); noise: half the interquartile "
             "range", ""]
    lines += cpu_table(base) + [""] + memory_lines() + [""] + exporter_lines(base)
    hz = kernel_hz()
    if hz and hz < max(c.hz for c in CONFIGS):
        lines += ["", f"note: CONFIG_HZ={hz}: CPU-time timers expire at most once per tick, so "
                  f"'1000 Hz' means about {hz} signals per CPU-second per thread for libprof"
                  " (it weights each sample by the timer's overrun count), and gperftools' "
                  "process-wide timer takes fewer."]
    lines += ["", f"stdout was identical to the unprofiled run's in all {rounds + 1} runs of "
              "every configuration."]
    return "\n".join(lines) + "\n"


def main():
    rounds = env_int("BENCH_ROUNDS", 7, 1, 1000)
    threads = env_int("BENCH_THREADS", 2, 1, 64)
    units = env_int("BENCH_UNITS", 0, 0, 10**9)
    paths = {"libprof": os.path.abspath(os.environ.get("BENCH_LIBPROF", "build/libprof.so")),
             "gperf": os.environ.get("BENCH_GPERFTOOLS",
                                     "/usr/lib/x86_64-linux-gnu/libprofiler.so"),
             "time": os.environ.get("BENCH_TIME", "/usr/bin/time")}
    prog = os.path.abspath(os.environ.get("BENCH_PROG", "build/progs/bench_cpu"))
    results = os.environ.get("BENCH_RESULTS", "build/bench-results.txt")
    for what, path in (("program", prog), ("libprof", paths["libprof"]),
                       ("gperftools", paths["gperf"]), ("GNU time", paths["time"])):
        if not os.path.exists(path):
            raise BenchError(f"{what} not found: {path}")
    tmp = tempfile.mkdtemp(prefix="libprof-bench.")
    try:
        # Measure copies: the linker rewrites build/libprof.so in place, and a
        # rebuild during the benchmark would crash the runs that have it mapped.
        os.mkdir(os.path.join(tmp, "bin"))
        prog = shutil.copy2(prog, os.path.join(tmp, "bin"))
        paths["libprof"] = shutil.copy2(paths["libprof"], os.path.join(tmp, "bin"))
        argv = [prog, str(threads)] + ([str(units)] if units else [])
        reference = measure(argv, rounds, paths, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(rounds, reference, os.environ.get("BENCH_BUILD", "build/libprof.so"))
    sys.stdout.write(text)
    sys.stdout.flush()
    with open(results, "w") as f:
        f.write(text)
        f.write("\nper-run CPU seconds, in round order:\n")
        for c in CONFIGS:
            f.write(f"  {c.name:<20} {' '.join(f'{t:.3f}' for t in c.cpu_s)}\n")
    print(f"bench: table written to {results}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
