#!/usr/bin/python3
"""Channel-blocked kernels beside the same kernels in NCHW, with the same config, interleaved.

    bench/layouts.py --kiln build/tools/kiln COMPILED_DIR [--rounds 5] [--min-time 0.3]
                     [--threads 2]

COMPILED_DIR is what `kiln compile` wrote: its NAME.json lists every kernel's workload key and
config. For each kernel whose key has a layout segment (graph/layout_plan.h keeps it blocked),
`kiln bench-op` times it twice per round, blocked and plain (the key without the segment), with
the config it was compiled with; rounds alternate which goes first. Prints a Markdown table of
the medians over rounds and their ratio (docs/PERFORMANCE.md).
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys


def shape_of(key):
    """The CLI's shape form of a conv2d key: n1c64h56w56/k64r3s3/st1p1d1g1 -> n=1,c=64,..."""
    segments = key.split("/")
    if segments[0] != "conv2d":
        sys.exit(f"layouts.py: {key}: only conv2d kernels are blocked")
    names = {"n": "n", "c": "c", "h": "h", "w": "w", "k": "k", "r": "r", "s": "s",
             "st": "stride", "p": "pad", "d": "dilation", "g": "groups"}
    parts = []
    for seg in segments[1:4]:
        for token, value in re.findall(r"([a-z]+)([0-9x-]+)", seg):
            parts.append(f"{names[token]}={value}")
    return ",".join(parts)


def median_ms(kiln, key, layout, config, min_time, threads):
    segments = key.split("/")
    epilogue = segments[5] if len(segments) > 5 and not segments[5].startswith("layout:") else ""
    cmd = [kiln, "bench-op", "conv2d", "--shape", shape_of(key), "--config-json",
           json.dumps(config), "--min-time", str(min_time), "--repeats", "3"]
    if epilogue:
        cmd += ["--epilogue", epilogue]
    if layout:
        cmd += ["--layout", layout]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"layouts.py: {' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    m = re.search(r"median ([0-9.]+) ms", out.stdout)
    if not m:
        sys.exit(f"layouts.py: no median in the output of {' '.join(cmd)}:\n{out.stdout}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("compiled", help="a directory kiln compile wrote")
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    found = glob.glob(os.path.join(a.compiled, "*.json"))
    if len(found) != 1:
        sys.exit(f"layouts.py: expected one NAME.json in {a.compiled}, found {len(found)}")
    with open(found[0]) as f:
        model = json.load(f)
    kernels = {}
    for k in model["kernels"]:
        key = k.get("workload", "")
        if "/layout:" in key:
            kernels[key] = k["config"]
    if not kernels:
        sys.exit(f"layouts.py: no kernel of {found[0]} is blocked")
    print("| kernel | layout | NCHW ms | blocked ms | blocked / NCHW |")
    print("| --- | --- | ---: | ---: | ---: |")
    ratios = []
    for key, config in kernels.items():
        plain_key, layout = key.split("/layout:")
        times = {"plain": [], "blocked": []}
        for r in range(a.rounds):
            order = ["plain", "blocked"] if r % 2 == 0 else ["blocked", "plain"]
            for which in order:
                times[which].append(median_ms(a.kiln, plain_key,
                                              layout if which == "blocked" else "", config,
                                              a.min_time, a.threads))
        p, b = statistics.median(times["plain"]), statistics.median(times["blocked"])
        ratios.append(b / p)
        print(f"| {plain_key} | {layout} | {p:.3f} | {b:.3f} | {b / p:.2f} |", flush=True)
    print(f"\nmedian ratio over {len(ratios)} kernels: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
