#!/usr/bin/python3
"""Whole models tuned by `kiln tune`, then timed by `kiln bench` beside PyTorch: kiln untuned,
kiln tuned, PyTorch eager, TorchScript frozen and frozen with optimize_for_inference, in the
same rounds.

    bench/tuned.py --kiln build/tools/kiln [--dir build/torchvision] [--work build/bench/tuned]
                   [--time 20m] [--threads 2] [--rounds 5] [MODEL ...]

Per model (default: resnet50 resnet18 mobilenet_v2 squeezenet1_1, exported by
tests/models/export_torchvision.py into --dir when missing), in its own database
WORK/MODEL.db, so each model's tuning time is its own:
  1. `kiln tune` until the model's tuning log (WORK/MODEL.jsonl) holds --time of tuning; a rerun
     tunes only what is missing (`--time 0` tunes nothing and uses the database as it is);
  2. `kiln compile` twice, with the database and with --no-db;
  3. `kiln bench MODEL.onnx --compiled tuned --compiled untuned` on the exported input.
Prints a Markdown table (docs/PERFORMANCE.md).
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = os.path.join(HERE, "..", "tests", "models", "export_torchvision.py")
MODELS = ["resnet50", "resnet18", "mobilenet_v2", "squeezenet1_1"]


def seconds(text):
    m = re.fullmatch(r"([0-9.]+)([smh]?)", text)
    if not m:
        sys.exit(f"tuned.py: --time '{text}' is not a duration such as 90s, 20m or 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def last_point(log):
    if not os.path.exists(log):
        return {"elapsed_s": 0.0, "trials": 0}
    with open(log) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1]) if lines else {"elapsed_s": 0.0, "trials": 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--dir", default="build/torchvision")
    ap.add_argument("--work", default="build/bench/tuned")
    ap.add_argument("--time", default="20m", help="tuning per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    budget = seconds(a.time)
    os.makedirs(a.work, exist_ok=True)
    subprocess.run([sys.executable, EXPORT, a.dir] + a.models, check=True)

    rows = []
    for name in a.models:
        onnx = os.path.join(a.dir, name + ".onnx")
        db = os.path.join(a.work, name + ".db")
        log = os.path.join(a.work, name + ".jsonl")
        left = budget - last_point(log)["elapsed_s"]
        if left > 5:
            print(f"{name}: tuning {left / 60:.1f} min into {db}", flush=True)
            subprocess.run([a.kiln, "tune", onnx, "--db", db, "--time", f"{left:.0f}s",
                            "--log", log, "--report", os.path.join(a.work, name + ".svg")],
                           check=True, stdout=subprocess.DEVNULL)
        tuning = last_point(log)
        outs = {}
        for kind, db_args in (("tuned", ["--db", db]), ("untuned", ["--no-db"])):
            outs[kind] = os.path.join(a.work, name, kind)
            subprocess.run([a.kiln, "compile", onnx, "-o", outs[kind], "--name", name] + db_args,
                           check=True, capture_output=True)
        report = os.path.join(a.work, name + ".bench.json")
        subprocess.run([a.kiln, "bench", onnx, "--compiled", outs["tuned"], "--compiled",
                        outs["untuned"], "--input", os.path.join(a.dir, name + ".input.npy"),
                        "--threads", str(a.threads), "--rounds", str(a.rounds), "--json", report],
                       check=True, stderr=subprocess.DEVNULL)
        with open(report) as f:
            r = json.load(f)["runners"]
        ms = {k: v["median_ms"] for k, v in r.items()}
        err = max(max(v["relative_error"].values()) for k, v in r.items()
                  if "relative_error" in v)
        row = (name, ms["kiln:untuned"], ms["kiln:tuned"], ms["eager"], ms["torchscript"],
               ms["optimized"], ms["kiln:tuned"] / ms["optimized"],
               ms["kiln:untuned"] / ms["optimized"], tuning["elapsed_s"] / 60, tuning["trials"],
               f'{r["kiln:tuned"]["tuned_kernels"]}/{r["kiln:tuned"]["kernels"]}', err)
        rows.append(row)
        print(f"{name}: kiln tuned {row[2]:.2f} ms, PyTorch optimized {row[5]:.2f} ms "
              f"({row[6]:.2f}x)", flush=True)

    print()
    print("| model | kiln untuned (ms) | kiln tuned (ms) | PyTorch eager (ms) | TorchScript frozen "
          "(ms) | frozen + optimize_for_inference (ms) | tuned / optimized | untuned / optimized "
          "| tuning (min) | trials | tuned kernels | max rel. error |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} "
              f"| {r[6]:.2f}x | {r[7]:.2f}x | {r[8]:.1f} | {r[9]} | {r[10]} | {r[11]:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
