#!/usr/bin/env python3
"""The libprof overhead benchmark; scripts/bench.sh runs it (`make bench`).

Runs one fixed-work program (tests/progs/bench_cpu.c) without a profiler, under
libprof and under gperftools' libprofiler, at 100 and 1000 Hz. Configurations
run interleaved, round-robin with the order rotated each round, so that drift
in the machine's speed falls on every configuration alike; each gets one
discarded warm-up run first. CPU time (user + sys, every thread, the exporter
included) and max RSS come from wait4 on the child; medians are reported.

Every run's stdout must equal the unprofiled run's, every run must exit 0, and
every profiled run must leave a profile behind; otherwise the numbers would be
meaningless and the script exits 1. A missed target is reported, exit 0.

Environment: BENCH_ROUNDS (7), BENCH_THREADS (2), BENCH_UNITS (the program's
default), BENCH_PROG, BENCH_LIBPROF, BENCH_GPERFTOOLS (paths; bench.sh sets
them), BENCH_RESULTS (build/bench-results.txt).
"""
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


def config_env(cfg, base, run_dir, paths):
    env = dict(base)
    if cfg.kind == "libprof":
        env.update(LD_PRELOAD=paths["libprof"], LIBPROF_CPU_HZ=str(cfg.hz),
                   LIBPROF_INTERVAL="1", LIBPROF_LOG="info", LIBPROF_OUTPUT_DIR=run_dir)
    elif cfg.kind == "gperf":
        env.update(LD_PRELOAD=paths["gperf"], CPUPROFILE=os.path.join(run_dir, "cpu.prof"),
                   CPUPROFILE_FREQUENCY=str(cfg.hz))
    return env


def spawn_and_wait(argv, env, out_path, err_path):
    """Runs argv with stdout/stderr to files; returns (exit code, rusage)."""
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


def run_once(cfg, tag, argv, base_env, tmp, paths, reference):
    """One run of cfg; records its numbers unless tag is 'warmup'. Returns its stdout."""
    run_dir = os.path.join(tmp, f"{cfg.kind}-{cfg.hz}-{tag}")
    os.mkdir(run_dir)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    code, usage = spawn_and_wait(argv, config_env(cfg, base_env, run_dir, paths),
                                 out_path, err_path)
    out, err = read(out_path), read(err_path)
    what = f"{cfg.name} ({tag})"
    if code != 0:
        raise BenchError(f"{what}: the workload exited with status {code}; its stderr:\n{tail(err)}")
    if reference is not None and out != reference:
        raise BenchError(f"{what}: stdout differs from the unprofiled run's:\n"
                         f"  none: {reference!r}\n  this: {out!r}")
    written = sorted(os.listdir(run_dir))
    if cfg.kind == "libprof":
        m = LOG_LINE.search(err)
        if not m or not written:
            raise BenchError(f"{what}: libprof wrote no profile (or no exporter log line); "
                             f"its stderr:\n{tail(err)}")
        exporter_us, profiles = int(m.group(1)), int(m.group(2))
    elif cfg.kind == "gperf":
        m = GPERF_LINE.search(err)
        if not written or not m:
            raise BenchError(f"{what}: gperftools wrote no profile; its stderr:\n{tail(err)}")
    shutil.rmtree(run_dir)
    if tag != "warmup":
        cfg.cpu_s.append(usage.ru_utime + usage.ru_stime)
        cfg.rss_kib.append(usage.ru_maxrss)
        if cfg.kind == "libprof":
            cfg.exporter_us.append(exporter_us)
            cfg.profiles.append(profiles)
        elif cfg.kind == "gperf":
            cfg.gperf_interrupts.append(int(m.group(1)))
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
    try:
        with open(f"/boot/config-{os.uname().release}") as f:
            m = re.search(r"^CONFIG_HZ=(\d+)$", f.read(), re.M)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def report(argv, rounds, reference):
    by_name = {c.name: c for c in CONFIGS}
    base = statistics.median(CONFIGS[0].cpu_s)
    ratio = {c.name: statistics.median(c.cpu_s) / base for c in CONFIGS}
    lines = [
        f"libprof benchmark: {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))}"
        f" ({reference.strip()})",
        f"{rounds} rounds, configurations interleaved; medians of the child's CPU time "
        "(user+sys, all threads)",
        "",
        f"{'configuration':<20} {'CPU s':>7} {'ratio':>7} {'overhead':>9} {'noise':>6}  "
        f"{'target':<24} result",
    ]
    for c in CONFIGS:
        over = (ratio[c.name] - 1) * 100
        cells = f"{c.name:<20} {statistics.median(c.cpu_s):7.3f} {ratio[c.name]:7.3f} " \
                f"{'-' if c.kind == 'none' else f'{over:+.2f}%':>9} {spread_pct(c.cpu_s):5.2f}%"
        if c.target_pct is None:
            lines.append(cells)
            continue
        rival = (ratio[c.rival] - 1) * 100
        ok_abs, ok_rival = over <= c.target_pct, over <= rival
        target = f"<= {c.target_pct:.0f}%, <= gperftools"
        verdict = (f"{'PASS' if ok_abs else 'FAIL'} ({over:+.2f}% vs {c.target_pct:.0f}%), "
                   f"{'PASS' if ok_rival else 'FAIL'} ({over - rival:+.2f} pt vs gperftools "
                   f"{rival:+.2f}%)")
        lines.append(f"{cells}  {target:<24} {verdict}")

    none_rss = statistics.median(CONFIGS[0].rss_kib)
    lines += ["", f"resident memory (median max RSS): none {none_rss / 1024:.1f} MiB"]
    for c in CONFIGS[1:]:
        extra = (statistics.median(c.rss_kib) - none_rss) / 1024
        note = (f"target < {RSS_TARGET_MIB:.0f} MiB: {'PASS' if extra < RSS_TARGET_MIB else 'FAIL'}"
                if c.kind == "libprof" else "(reference)")
        lines.append(f"  {c.name:<20} {extra:+7.1f} MiB   {note}")

    lines += ["", "libprof exporter thread (median; its CPU is part of the CPU time above):"]
    for c in CONFIGS:
        if c.kind != "libprof":
            continue
        cpu_ms = statistics.median(c.exporter_us) / 1000
        lines.append(f"  {c.name:<20} {cpu_ms:7.1f} ms CPU = {cpu_ms / 10 / base:.2f}% of the "
                     f"unprofiled run, {statistics.median(c.profiles):.0f} profiles per run "
                     "(LIBPROF_INTERVAL=1)")
    for c in CONFIGS:
        if c.kind == "gperf":
            lines.append(f"  {c.name:<20} took {statistics.median(c.gperf_interrupts):.0f} "
                         "samples per run (its own count)")
    hz = kernel_hz()
    if hz and hz < max(c.hz for c in CONFIGS):
        lines += ["", f"note: this kernel has CONFIG_HZ={hz}. CPU-time timers expire at most once "
                  f"per tick, so '1000 Hz' delivers about {hz} signals per CPU-second; libprof "
                  "weights each sample by the timer's overrun count."]
    lines += ["", f"stdout identical to the unprofiled run in all {rounds + 1} runs of each "
              "configuration (warm-up included)."]
    return "\n".join(lines) + "\n"


def main():
    rounds = env_int("BENCH_ROUNDS", 7, 1, 1000)
    threads = env_int("BENCH_THREADS", 2, 1, 64)
    units = env_int("BENCH_UNITS", 0, 0, 10**9)
    paths = {"libprof": os.path.abspath(os.environ.get("BENCH_LIBPROF", "build/libprof.so")),
             "gperf": os.environ.get("BENCH_GPERFTOOLS",
                                     "/usr/lib/x86_64-linux-gnu/libprofiler.so")}
    prog = os.path.abspath(os.environ.get("BENCH_PROG", "build/progs/bench_cpu"))
    results = os.environ.get("BENCH_RESULTS", "build/bench-results.txt")
    for what, path in (("program", prog), ("libprof", paths["libprof"]),
                       ("gperftools", paths["gperf"])):
        if not os.path.exists(path):
            raise BenchError(f"{what} not found: {path}")
    argv = [prog, str(threads)] + ([str(units)] if units else [])
    tmp = tempfile.mkdtemp(prefix="libprof-bench.")
    try:
        reference = measure(argv, rounds, paths, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(argv, rounds, reference)
    sys.stdout.write(text)
    with open(results, "w") as f:
        f.write(text)
    print(f"bench: table written to {results}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
