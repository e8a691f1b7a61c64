#!/usr/bin/env bash
# kiln's main job today: build it, list its ops, then compile, verify and time conv2d on a
# ResNet-50 layer (r50_l1_3x3: the 3x3 convolution of the first bottleneck stage) with its
# default schedule, on this machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh

echo
echo "== kiln ops"
build/tools/kiln ops

echo "== kiln bench-op conv2d, r50_l1_3x3, default schedule"
build/tools/kiln bench-op conv2d --shape n=1,c=64,h=56,w=56,k=64,r=3,s=3,stride=1,pad=1
