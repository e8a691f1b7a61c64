#!/usr/bin/python3
"""kiln tune's task scheduler against round-robin on one model: trials the gradient policy needs
to reach round-robin's final estimated latency, and both tuned models timed for real.

    bench/scheduler.py --kiln build/tools/kiln [--model build/torchvision/resnet50.onnx]
                       [--trials 800] [--chunk 200] [--batch 8] [--dir build/bench/scheduler]
                       [--rounds 5]

Each policy tunes into its own fresh database (DIR/gradient.db, DIR/round-robin.db); the two
runs alternate in chunks of --chunk trials (kiln tune resumes where it stopped), so a slow or
noisy stretch of the machine falls on both. Each run's tuning log gives the estimate (sum over
tasks of count x best measured time) after every batch. Then each database compiles the model
and `kiln run --bench` times the two libraries in interleaved rounds. Prints a Markdown table
(docs/PERFORMANCE.md). A rerun with the same --dir continues the runs up to --trials.

It also prints an oracle bound: replaying round-robin's own measurements (each task's results
in the order they were measured), the fewest trials any allocation in batches of --batch (and
of a half and a quarter of it) needs
to reach round-robin's final estimate, when it knows in advance what every batch will find. No
policy that only sees the past can do better on the same measurements; when the bound is near
60%, the goal says more about the model's tasks than about the policy.
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys

POLICIES = ["gradient", "round-robin"]


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def read_log(path):
    points = []
    if os.path.exists(path):
        with open(path) as f:
            points = [json.loads(line) for line in f if line.strip()]
    return points


def latency(kiln, out, rounds_ms):
    r = subprocess.run([kiln, "run", out, "--bench", "--runs", "20", "--min-time", "0.5"],
                       capture_output=True, text=True, check=True)
    rounds_ms.append(float(re.search(r"median ([0-9.]+) ms", r.stdout).group(1)))


def task_sequences(db):
    """Per workload key, its measured times in the order they were measured (failures: inf)."""
    con = sqlite3.connect(db)
    out = {}
    for key, ms, status in con.execute(
            "SELECT w.key, r.median_ms, r.status FROM records r "
            "JOIN workloads w ON w.id = r.workload_id ORDER BY r.id"):
        out.setdefault(key, []).append(ms if status == "ok" else float("inf"))
    con.close()
    return out


def oracle_trials(seqs, counts, batch, target):
    """Fewest trials to bring sum(count x best) to `target` when each task's batches are its
    recorded measurements in order and the allocation knows them in advance: every task gets
    its first batch, then greedily the run of batches with the highest gain per trial."""
    alloc = {k: min(batch, len(s)) for k, s in seqs.items()}

    def best(k, t):
        return min(seqs[k][:t])

    def estimate():
        return sum(counts[k] * best(k, alloc[k]) for k in seqs)

    while estimate() > target * (1 + 1e-12):
        choices = []
        for k, s in seqs.items():
            for n in range(alloc[k] + batch, len(s) + 1, batch):
                gain = counts[k] * (best(k, alloc[k]) - best(k, n)) / (n - alloc[k])
                choices.append((gain, -n, k, n))
        if not choices:
            return None
        _, _, k, n = max(choices)
        alloc[k] = n
    return sum(alloc.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", default="build/torchvision/resnet50.onnx")
    ap.add_argument("--trials", type=int, default=800, help="per policy")
    ap.add_argument("--chunk", type=int, default=200, help="trials per kiln tune call")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dir", default="build/bench/scheduler")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the final timing")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(a.model))[0]
    db = {p: os.path.join(a.dir, p + ".db") for p in POLICIES}
    log = {p: os.path.join(a.dir, p + ".jsonl") for p in POLICIES}
    seconds = {p: 0.0 for p in POLICIES}

    def done(p):
        points = read_log(log[p])
        return points[-1]["trials"] if points else 0

    while any(done(p) < a.trials for p in POLICIES):
        for p in POLICIES:
            n = min(a.chunk, a.trials - done(p))
            if n <= 0:
                continue
            print(f"{p}: trials {done(p)} -> {done(p) + n}", flush=True)
            subprocess.run([a.kiln, "tune", a.model, "--db", db[p], "--schedule", p,
                            "--trials", str(n), "--batch", str(a.batch), "--log", log[p],
                            "--confirm", "0"], check=True, stdout=subprocess.DEVNULL)

    curves = {p: [(pt["trials"], pt["estimate_ms"]) for pt in read_log(log[p])
                  if pt.get("estimate_ms")] for p in POLICIES}
    for p in POLICIES:
        seconds[p] = read_log(log[p])[-1]["elapsed_s"]
    for p in POLICIES:
        if not curves[p]:
            sys.exit(f"scheduler.py: {p} has no estimate yet (not every task has a record): "
                     "--trials must exceed the tasks times --batch")
    rr_final = curves["round-robin"][-1][1]
    reach = next((t for t, e in curves["gradient"] if e <= rr_final), None)

    outs = {}
    for p in POLICIES:
        outs[p] = os.path.join(a.dir, "out-" + p)
        subprocess.run([a.kiln, "compile", a.model, "--db", db[p], "-o", outs[p], "--name", name],
                       check=True, capture_output=True)
    measured = {p: [] for p in POLICIES}
    for r in range(a.rounds):
        for p in (POLICIES if r % 2 == 0 else POLICIES[::-1]):
            latency(a.kiln, outs[p], measured[p])

    # The oracle bound, on round-robin's measurements; counts from the compiled model.
    with open(os.path.join(outs["round-robin"], name + ".json")) as f:
        kernels = json.load(f)["kernels"]
    counts = {}
    for kern in kernels:
        if kern.get("workload"):
            counts[kern["workload"]] = counts.get(kern["workload"], 0) + 1
    seqs = {k: v for k, v in task_sequences(db["round-robin"]).items() if k in counts}
    sizes = [b for b in (a.batch, a.batch // 2, a.batch // 4) if b >= 1]
    oracle = {b: oracle_trials(seqs, counts, b, rr_final) for b in sizes}

    print()
    print(f"{name}, {a.trials} trials per policy in batches of {a.batch}, runs alternating every "
          f"{a.chunk} trials; latency: `kiln run --bench`, median of {a.rounds} interleaved rounds")
    print()
    print("| policy | first estimate (ms) | final estimate (ms) | trials to round-robin's final "
          "| tuning time | measured latency (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for p in POLICIES:
        first, final = curves[p][0][1], curves[p][-1][1]
        to = a.trials if p == "round-robin" else reach
        to_text = "not reached" if to is None else f"{to} ({100 * to / a.trials:.0f}%)"
        print(f"| {p} | {first:.2f} | {final:.2f} | {to_text} | {seconds[p] / 60:.1f} min "
              f"| {median(measured[p]):.2f} |")
    print()
    print(f"oracle bound: trials to reach round-robin's final {rr_final:.2f} ms when round-robin's "
          "own measurements are allocated with foresight")
    for b, n in oracle.items():
        text = "not reachable" if n is None else f"{n} ({100 * n / a.trials:.0f}%)"
        print(f"  batches of {b}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
