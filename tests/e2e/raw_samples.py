#!/usr/bin/env python3
"""Reads `go tool pprof -raw` output (stdin) and answers questions about its
samples for the trace-correlation tests:

  raw_samples.py owners PREFIX   for each sample whose stack has a function
      PREFIX<K> (e.g. burn_0), count by K: samples labelled with a trace id
      that ends in the hex digit K (right), with another trace id (wrong), and
      without a trace id (unlabelled). Prints "K right wrong unlabelled value".
  raw_samples.py traces          the distinct trace_id labels, one per line.
"""
import re
import sys

def parse(lines):
    samples, locations, section, last_loc = [], {}, None, None
    for line in lines:
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            section = None
            continue
        if section == "samples":
            m = re.match(r"\s+([\d ]+): ([\d ]+)$", line.rstrip())
            if m:
                samples.append({"values": [int(x) for x in m.group(1).split()],
                                "locs": [int(x) for x in m.group(2).split()],
                                "labels": {}})
                continue
            if samples and "[" in line:
                for key, val in re.findall(r"(\w+):\[([^\]]*)\]", line):
                    samples[-1]["labels"][key] = val
        elif section == "locations":
            m = re.match(r"\s+(\d+): 0x[0-9a-f]+ (?:M=\d+ )?(\S+)", line)
            if m:
                last_loc = int(m.group(1))
                locations[last_loc] = [m.group(2)]
            elif last_loc is not None and line.strip():
                locations[last_loc].append(line.split()[0])
    for s in samples:
        s["functions"] = [f for loc in s["locs"] for f in locations.get(loc, [])]
    return samples

def main():
    samples = parse(sys.stdin.read().splitlines())
    if sys.argv[1] == "owners":
        prefix = sys.argv[2]
        counts = {}
        for s in samples:
            owners = {f[len(prefix):] for f in s["functions"] if f.startswith(prefix)}
            for k in owners:
                c = counts.setdefault(k, [0, 0, 0, 0])
                trace = s["labels"].get("trace_id")
                if trace is None:
                    c[2] += 1
                elif trace[-1] == k:
                    c[0] += 1
                else:
                    c[1] += 1
                c[3] += s["values"][-1]
        for k in sorted(counts):
            print(k, *counts[k])
    elif sys.argv[1] == "traces":
        for t in sorted({s["labels"]["trace_id"] for s in samples if "trace_id" in s["labels"]}):
            print(t)

main()
