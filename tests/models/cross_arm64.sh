#!/bin/sh
# cross_arm64.sh KILN MODEL_DIR NAME WORK_DIR — compiles MODEL_DIR/NAME.onnx for arm-64-linux
# and for the host, runs both through run_npy.c (the arm64 one under qemu-aarch64) on
# NAME.input.npy, and checks that the two outputs agree (relative error <= 1e-4) and that the
# arm64 one matches PyTorch's NAME.expected.npy (<= 1e-3). Exit 77 (skipped) without the cross
# compiler, qemu-aarch64, numpy or the exported model.
set -eu
kiln=$1 models=$2 name=$3 work=$4
here=$(dirname "$0")
for tool in aarch64-linux-gnu-gcc qemu-aarch64 cc; do
    command -v $tool >/dev/null || { echo "cross_arm64: no $tool; skipped"; exit 77; }
done
[ -f "$models/$name.onnx" ] || { echo "cross_arm64: no $models/$name.onnx; skipped"; exit 77; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "cross_arm64: no numpy; skipped"; exit 77; }
rm -rf "$work" && mkdir -p "$work"

build() {  # build TARGET CC RUN...
    target=$1 cc=$2
    shift 2
    "$kiln" compile "$models/$name.onnx" --target "$target" --no-db -o "$work/$target" \
        --name "$name" 2>/dev/null | grep -E '^(target|time)'
    $cc -std=c99 -O2 -DKILN_MODEL_HEADER="\"$name.h\"" -DKILN_MODEL_FN="kiln_model_$name" \
        -I"$work/$target" "$here/run_npy.c" "$work/$target/lib$name.a" -lpthread -ldl -lm \
        -o "$work/$target/run_npy"
    "$@" "$work/$target/run_npy" "$models/$name.input.npy" "$work/$target.npy"
}
build arm-64-linux aarch64-linux-gnu-gcc qemu-aarch64 -L /usr/aarch64-linux-gnu
build host cc
/usr/bin/python3 - "$work/arm-64-linux.npy" "$work/host.npy" "$models/$name.expected.npy" <<'PY'
import sys
import numpy as np
arm, host, torch = (np.load(p) for p in sys.argv[1:4])
def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())
print(f"arm64 vs x86: relative error {rel(arm, host):.3g} (tolerance 1e-4)")
print(f"arm64 vs PyTorch: relative error {rel(arm, torch):.3g} (tolerance 1e-3)")
sys.exit(0 if rel(arm, host) <= 1e-4 and rel(arm, torch) <= 1e-3 else 1)
PY
