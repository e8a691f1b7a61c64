#!/usr/bin/env bash
# kiln's main job today, end to end on a small model: build kiln; export SqueezeNet 1.1 from
# torchvision (random weights, opset 13); show its kernels; tune them briefly (kiln tune) into
# a tuning database; compile the model into a static library with that database; build
# examples/classify against it through find_package(kiln), as an application would, and
# classify the exported input; check the output against PyTorch's; time kiln beside PyTorch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh

demo=build/demo
db=$demo/tuning.db
model=squeezenet1_1
mkdir -p "$demo"

echo
echo "== export $model from torchvision (random weights) into $demo"
/usr/bin/python3 tests/models/export_torchvision.py "$demo" "$model" 2>&1 | grep -v Warning || true

echo
echo "== kiln inspect $model --kernels"
build/tools/kiln inspect "$demo/$model.onnx" --kernels | sed -n '/^kernel tasks/,/^fallbacks/p'

echo
echo "== kiln tune $model: 80 trials over its 18 kernel tasks into $db (continues if run again)"
build/tools/kiln tune "$demo/$model.onnx" --db "$db" --trials 80 --batch 4 --confirm 2 \
    --report "$demo/tuning-curve.html"

echo
echo "== kiln compile $model --db $db (kernels without a record take default configs)"
build/tools/kiln compile "$demo/$model.onnx" --db "$db" -o "$demo/out" 2>&1 | grep -v '^warning'

echo
echo "== examples/classify built with find_package(kiln), run on the exported input"
cmake -S examples/classify -B "$demo/classify" -Dkiln_DIR="$PWD/build" \
    -DCLASSIFY_MODEL="$PWD/$demo/$model.onnx" -DCLASSIFY_DB="$PWD/$db" > "$demo/classify.log"
cmake --build "$demo/classify" >> "$demo/classify.log"
"$demo/classify/classify" --save "$demo/classify.npy" "$demo/$model.input.npy"

echo
echo "== the same output against PyTorch's"
build/tools/kiln run "$demo/out" --input "$demo/$model.input.npy" \
    --compare "$demo/$model.expected.npy" | grep compare

echo
echo "== kiln bench: latency beside PyTorch eager, TorchScript and optimize_for_inference (2 threads)"
build/tools/kiln bench "$demo/$model.onnx" --compiled "$demo/out" --threads 2 --rounds 3 \
    --input "$demo/$model.input.npy"
