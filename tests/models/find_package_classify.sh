#!/bin/sh
# find_package_classify: examples/classify built as a user builds it, as a separate CMake
# project that finds this build with find_package(kiln) and compiles MODEL at build time with
# kiln_add_model(); then classify's output on MODEL's input is compared with PyTorch's
# (max |out - expected| / max |expected| <= 1e-3), and a small PPM image goes through the image
# path (five lines of classes). Exit 77 (skipped) without the exported model or numpy.
#
#   find_package_classify.sh CMAKE SOURCE_DIR KILN_BUILD_DIR MODEL_BASE WORK_DIR
# MODEL_BASE is the path without .onnx: MODEL_BASE.onnx, .input.npy and .expected.npy.
set -eu
cmake=$1 src=$2 kiln_build=$3 model=$4 work=$5

for f in "$model.onnx" "$model.input.npy" "$model.expected.npy"; do
    test -f "$f" || { echo "skipped: $f is missing (the torchvision export)"; exit 77; }
done
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "skipped: no numpy"; exit 77; }

rm -rf "$work"
mkdir -p "$work"
"$cmake" -S "$src/examples/classify" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -Dkiln_DIR="$kiln_build" -DCLASSIFY_MODEL="$model.onnx" -DCLASSIFY_NO_DB=ON
"$cmake" --build "$work/build" -j2

"$work/build/classify" --threads 2 --save "$work/out.npy" "$model.input.npy" | tee "$work/top5.txt"
/usr/bin/python3 - "$work/out.npy" "$model.expected.npy" <<'EOF'
import sys
import numpy as np
out, expected = np.load(sys.argv[1]), np.load(sys.argv[2])
if out.shape != expected.shape or out.dtype != np.float32:
    sys.exit(f"classify wrote {out.dtype} {out.shape}, expected float32 {expected.shape}")
err = float(np.abs(out - expected).max() / np.abs(expected).max())
print(f"relative error {err:.3g} (tolerance 1e-3)")
sys.exit(0 if err <= 1e-3 else 1)
EOF

# The image path: a 40x30 P6 gradient with a comment in its header, resized to the model's
# input; five lines "CLASS SCORE", one per class.
/usr/bin/python3 - "$work/image.ppm" <<'EOF'
import sys
w, h = 40, 30
pixels = bytes(v for y in range(h) for x in range(w)
               for v in (x * 255 // (w - 1), y * 255 // (h - 1), (x * y) % 256))
with open(sys.argv[1], "wb") as f:
    f.write(b"P6\n# made by find_package_classify.sh\n%d %d\n255\n" % (w, h) + pixels)
EOF
"$work/build/classify" "$work/image.ppm" > "$work/image.txt"
cat "$work/image.txt"
lines=$(grep -cE '^[0-9]+ -?[0-9]+\.[0-9]+$' "$work/image.txt")
test "$lines" -eq 5 || { echo "classify printed $lines class lines for the image, not 5"; exit 1; }
test "$(wc -l < "$work/image.txt")" -eq 5
echo "find_package_classify: ok"
