#!/usr/bin/python3
"""Whole models: kiln's compile time, library, weights and arena sizes, and its latency beside
PyTorch's on the same machine, in the same run.

    bench/models.py --kiln build/tools/kiln [--dir build/torchvision] [--db tuning.db]
                    [--threads 2] [--rounds 3] [--runs 20] [MODEL ...]

For each model (default: the eight of tests/models/export_torchvision.py, exported into --dir
when missing): `kiln compile` (timed), then rounds alternating `kiln run DIR --bench` and
PyTorch (eager, torch.no_grad(), the same input and thread count), each round's median kept;
the table gives the median over rounds. Prints a Markdown table (docs/PERFORMANCE.md).
Runs with Debian's python3-torchvision.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = os.path.join(HERE, "..", "tests", "models", "export_torchvision.py")
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x1_0",
          "densenet121", "googlenet", "efficientnet_b0"]


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def kiln_latency(kiln, out_dir, inp, threads, runs):
    r = subprocess.run([kiln, "run", out_dir, "--input", inp, "--bench", "--runs", str(runs),
                        "--min-time", "0.5", "--threads", str(threads)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"median ([0-9.]+) ms", r.stdout)
    return float(m.group(1))


def torch_latency(model, x, runs):
    import torch
    ms = []
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        while len(ms) < runs or time.perf_counter() - start < 0.5:
            t = time.perf_counter()
            model(x)
            ms.append((time.perf_counter() - t) * 1e3)
    return median(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--dir", default="build/torchvision")
    ap.add_argument("--db", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()

    import numpy as np
    import torch
    import torchvision
    torch.set_num_threads(a.threads)
    subprocess.run([sys.executable, EXPORT, a.dir] + a.models, check=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{a.threads} threads, {a.rounds} rounds", flush=True)
    rows = []
    for name in a.models:
        onnx = os.path.join(a.dir, name + ".onnx")
        inp = os.path.join(a.dir, name + ".input.npy")
        out = os.path.join(a.dir, "out-" + name)
        cmd = [a.kiln, "compile", onnx, "-o", out, "--name", name]
        cmd += ["--db", a.db] if a.db else ["--no-db"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        compile_s = time.perf_counter() - t
        desc = json.load(open(os.path.join(out, name + ".json")))
        lib = os.path.getsize(os.path.join(out, "lib" + name + ".a"))
        tuned = sum(k["kind"] == "tuned" for k in desc["kernels"])
        kernels = sum(k["kind"] in ("tuned", "default") for k in desc["kernels"])

        torch.manual_seed(0)
        kwargs = {"weights": None}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=False)
        model = getattr(torchvision.models, name)(**kwargs).eval()
        x = torch.from_numpy(np.load(inp))
        k_ms, t_ms = [], []
        for _ in range(a.rounds):
            k_ms.append(kiln_latency(a.kiln, out, inp, a.threads, a.runs))
            t_ms.append(torch_latency(model, x, a.runs))
        k, p = median(k_ms), median(t_ms)
        rows.append((name, compile_s, lib / 1e6, desc["weight_bytes"] / 1e6,
                     desc["arena_bytes"] / 1e6, f"{tuned}/{kernels}", k, p, p / k))
        print(f"{name}: compile {compile_s:.1f} s, kiln {k:.2f} ms, PyTorch {p:.2f} ms",
              flush=True)
    print()
    print("| model | compile (s) | library (MB) | weights (MB) | arena (MB) | tuned kernels "
          "| kiln median (ms) | PyTorch median (ms) | PyTorch / kiln |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]} "
              f"| {r[6]:.2f} | {r[7]:.2f} | {r[8]:.2f}x |")


if __name__ == "__main__":
    main()
