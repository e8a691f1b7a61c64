#!/usr/bin/python3
"""Exports torchvision models with random weights to ONNX (opset 13), with an input and
PyTorch's output on it, for kiln's end-to-end tests (tests/models/CMakeLists.txt).

    export_torchvision.py OUT_DIR [MODEL ...]

writes OUT_DIR/MODEL.onnx, OUT_DIR/MODEL.input.npy and OUT_DIR/MODEL.expected.npy per model
(default: the eight models of docs/COMPILE.md). Runs with Debian's python3-torchvision; files
already present are kept. Exit code 77 when torchvision is not installed (ctest: skipped).
"""
import os
import sys

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x1_0",
          "densenet121", "googlenet", "efficientnet_b0"]


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import numpy as np
        import torch
        import torchvision
    except ImportError as e:
        print(f"export_torchvision: {e}; apt-get install python3-torchvision", file=sys.stderr)
        return 77
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in sys.argv[2:] or MODELS:
        paths = [os.path.join(out, name + s) for s in (".onnx", ".input.npy", ".expected.npy")]
        if all(os.path.exists(p) for p in paths):
            continue
        torch.manual_seed(0)
        kwargs = {"weights": None}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=False)  # its own init gives all-zero features
        model = getattr(torchvision.models, name)(**kwargs).eval()
        x = torch.rand(1, 3, 224, 224) * 2 - 1
        with torch.no_grad():
            y = model(x)
        tmp = paths[0] + ".tmp"
        torch.onnx.export(model, x, tmp, opset_version=13, input_names=["input"],
                          output_names=["output"])
        os.replace(tmp, paths[0])
        np.save(paths[1], x.numpy().astype(np.float32))
        np.save(paths[2], y.numpy().astype(np.float32))
        print(f"{name}: {os.path.getsize(paths[0]) / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
