#!/usr/bin/env python3
"""Writes test profiles for the collector tests, encoded by protoc from text.

  mkprofile.py pprof OUT.pb.gz [--time UNIX_S] SAMPLE...
  mkprofile.py otlp OUT.bin [--time UNIX_S] [--service NAME] SAMPLE...

SAMPLE is FUNC[,FUNC...][@TRACE_ID[/SPAN_ID]]=VALUE: a stack (leaf first), an
optional trace (32 hex; span 16 hex), and a CPU time in nanoseconds. pprof:
sample types samples/count and cpu/nanoseconds, trace_id/span_id string
labels, one mapping marked symbolized. OTLP (v1.10 layout): one profile of
cpu/nanoseconds whose samples link to their trace through the link table.
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/../.."


def parse(args):
    opts, samples = {"time": int(time.time()) - 5, "service": "otlp-svc"}, []
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            opts[args[i][2:]] = args[i + 1]
            i += 2
            continue
        stack, value = args[i].rsplit("=", 1)
        trace = span = None
        if "@" in stack:
            stack, trace = stack.split("@", 1)
            if "/" in trace:
                trace, span = trace.split("/", 1)
        samples.append((stack.split(","), trace, span, int(value)))
        i += 1
    return opts, samples


def encode(proto, message, text):
    return subprocess.run(["protoc", "-I" + ROOT + "/proto", "--encode=" + message, proto],
                          input=text.encode(), stdout=subprocess.PIPE, check=True,
                          cwd=ROOT + "/proto").stdout


def pprof(out, opts, samples):
    strings = [""]

    def s(x):
        if x not in strings:
            strings.append(x)
        return strings.index(x)

    funcs = []
    for stack, _, _, _ in samples:
        for f in stack:
            if f not in funcs:
                funcs.append(f)
    t = ["sample_type { type: %d unit: %d }" % (s("samples"), s("count")),
         "sample_type { type: %d unit: %d }" % (s("cpu"), s("nanoseconds")),
         "mapping { id: 1 memory_start: 4096 memory_limit: 1048576 filename: %d "
         "has_functions: true }" % s("/usr/bin/testprog")]
    for i, f in enumerate(funcs):
        t.append("function { id: %d name: %d system_name: %d filename: %d }"
                 % (i + 1, s(f), s(f), s("test.c")))
        t.append("location { id: %d mapping_id: 1 address: %d line { function_id: %d line: %d } }"
                 % (i + 1, 4096 + 16 * i, i + 1, 10 + i))
    for stack, trace, span, value in samples:
        labels = ""
        if trace:
            labels += " label { key: %d str: %d }" % (s("trace_id"), s(trace))
        if span:
            labels += " label { key: %d str: %d }" % (s("span_id"), s(span))
        locs = " ".join("location_id: %d" % (funcs.index(f) + 1) for f in stack)
        t.append("sample { %s value: %d value: %d%s }" % (locs, max(1, value // 10000000), value, labels))
    t.append("time_nanos: %d duration_nanos: 10000000000" % (int(opts["time"]) * 10**9))
    t.append("period_type { type: %d unit: %d } period: 10000000" % (s("cpu"), s("nanoseconds")))
    t.append("default_sample_type: %d" % s("cpu"))
    t += ['string_table: "%s"' % x for x in strings]
    raw = encode("profile.proto", "perftools.profiles.Profile", "\n".join(t))
    import gzip
    with open(out, "wb") as f:
        f.write(gzip.compress(raw))


def esc(hexstr):
    return "".join("\\x" + hexstr[i:i + 2] for i in range(0, len(hexstr), 2))


def otlp(out, opts, samples):
    strings = [""]

    def s(x):
        if x not in strings:
            strings.append(x)
        return strings.index(x)

    funcs, links = [], []
    for stack, trace, span, _ in samples:
        for f in stack:
            if f not in funcs:
                funcs.append(f)
        if trace and (trace, span) not in links:
            links.append((trace, span))
    d = ["mapping_table {}", "location_table {}", "function_table {}", "link_table {}",
         "attribute_table {}", "stack_table {}",
         'mapping_table { memory_start: 4096 memory_limit: 1048576 filename_strindex: %d }'
         % s("/usr/bin/otlpprog")]
    for i, f in enumerate(funcs):
        d.append("function_table { name_strindex: %d filename_strindex: %d }" % (s(f), s("otlp.c")))
        d.append("location_table { mapping_index: 1 address: %d lines { function_index: %d line: %d } }"
                 % (8192 + 16 * i, i + 1, 20 + i))
    for trace, span in links:
        d.append('link_table { trace_id: "%s" span_id: "%s" }' % (esc(trace), esc(span or "00" * 8)))
    d.append('attribute_table { key_strindex: %d value { string_value: "GET /x" } }' % s("http.route"))
    p = []
    for k, (stack, trace, span, value) in enumerate(samples):
        d.append("stack_table { %s }" % " ".join(
            "location_indices: %d" % (funcs.index(f) + 1) for f in stack))
        link = links.index((trace, span)) + 1 if trace else 0
        p.append("samples { stack_index: %d link_index: %d values: %d attribute_indices: 1 }"
                 % (k + 1, link, value))
    prof = ("sample_type { type_strindex: %d unit_strindex: %d } %s time_unix_nano: %d "
            "duration_nano: 10000000000 period_type { type_strindex: %d unit_strindex: %d } "
            "period: 10000000" % (s("cpu"), s("nanoseconds"), " ".join(p),
                                  int(opts["time"]) * 10**9, s("cpu"), s("nanoseconds")))
    d += ['string_table: "%s"' % x for x in strings]
    text = ('resource_profiles { resource { attributes { key: "service.name" value { string_value: "%s" } } '
            'attributes { key: "host.name" value { string_value: "testhost" } } } '
            'scope_profiles { profiles { %s } } } dictionary { %s }'
            % (opts["service"], prof, " ".join(d)))
    raw = encode("otlp_profiles_service.proto",
                 "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest", text)
    with open(out, "wb") as f:
        f.write(raw)


if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    o, smp = parse(sys.argv[3:])
    {"pprof": pprof, "otlp": otlp}[kind](out, o, smp)
