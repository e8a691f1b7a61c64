#!/usr/bin/env bash
# kiln's main job today: build it, list its ops, then on one ResNet-50 layer (r50_l1_1x1_256: the
# 1x1 expansion of the first bottleneck stage) compile, verify and time the default schedule,
# tune it briefly into a tuning database, and time the tuned schedule from that database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh

layer=n=1,c=64,h=56,w=56,k=256,r=1,s=1
db=build/demo-tuning.db

echo
echo "== kiln ops"
build/tools/kiln ops

echo
echo "== kiln bench-op conv2d, r50_l1_1x1_256, default schedule"
build/tools/kiln bench-op conv2d --shape "$layer" --no-db

echo
echo "== kiln tune-op conv2d, r50_l1_1x1_256, 16 candidates into $db (resumes if run again)"
build/tools/kiln tune-op conv2d --shape "$layer" --db "$db" --trials 16

echo
echo "== kiln bench-op conv2d, r50_l1_1x1_256, best schedule in $db"
build/tools/kiln bench-op conv2d --shape "$layer" --db "$db"
