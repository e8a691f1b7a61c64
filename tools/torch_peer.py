#!/usr/bin/python3
"""PyTorch as a peer of a compiled kiln model: `kiln bench` starts this script and times it in
the same run as the model, interleaved (docs/CLI.md, `kiln bench`).

    torch_peer.py MODEL.onnx INPUT.npy [--threads N] [--torchvision NAME]

The ONNX graph becomes a torch.fx GraphModule, one torch call per node, its initializers as
buffers: eager PyTorch runs that module, as a hand-written nn.Module would run. With
--torchvision NAME the eager module is torchvision's own model instead, with the weights that
tests/models/export_torchvision.py exports (seed 0), so its output matches the ONNX file's.
Three variants are timed: `eager` (torch.no_grad), `torchscript` (torch.jit.trace, then
torch.jit.freeze) and `optimized` (frozen, then torch.jit.optimize_for_inference, PyTorch's
fastest CPU inference path).

Protocol, one line each way, on stdin and stdout:
    -> (start)                       <- ready VARIANT ...     or   error MESSAGE
    -> time VARIANT RUNS MIN_SECONDS <- ms MEDIAN MIN P90 COUNT
    -> output VARIANT PATH.npy       <- wrote PATH.npy
    -> quit
Exit codes: 0 done, 3 PyTorch or numpy missing, 4 a model this converter cannot express.
"""
import argparse
import operator
import sys
import time


def fail(code, message):
    print(f"error {message}", flush=True)
    sys.exit(code)


class Unsupported(Exception):
    pass


def convert(path):
    """The ONNX model at `path` as a torch.fx.GraphModule (inputs in the graph's order)."""
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper
    from torch import fx

    model = onnx.load(path)
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:  # Constant nodes are initializers by another name
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    known = {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid",
             "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "BatchNormalization", "MaxPool",
             "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Concat",
             "Transpose", "Split", "Slice", "Softmax", "Pad", "Dropout", "Identity", "Constant",
             "ReduceMean", "Squeeze", "Unsqueeze"}
    missing = sorted({n.op_type for n in graph.node} - known)
    if missing:
        raise Unsupported("ops the PyTorch peer cannot express: " + ", ".join(missing))

    root = torch.nn.Module()
    g = fx.Graph()
    env = {}

    def tensor(name):
        if name in env:
            return env[name]
        if name not in consts:
            raise Unsupported(f"value '{name}' is used before it is computed")
        attr = f"c{len(root._buffers)}"
        root.register_buffer(attr, torch.from_numpy(np.array(consts[name])))
        env[name] = g.get_attr(attr)
        return env[name]

    def const(name, what):
        if name not in consts:
            raise Unsupported(f"{what} ('{name}') is computed at run time; the peer needs it "
                              "constant")
        return consts[name]

    def call(fn, *args, **kwargs):
        return g.call_function(fn, tuple(args), kwargs)

    inputs = [i.name for i in graph.input if i.name not in consts]
    for name in inputs:
        env[name] = g.placeholder("in_" + "".join(c if c.isalnum() else "_" for c in name))

    for n in graph.node:
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        op = n.op_type
        ins = [i for i in n.input]
        if op == "Constant":
            continue
        if op == "Conv":
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
                raise Unsupported(f"Conv '{n.name}': auto_pad {a['auto_pad'].decode()}")
            k = len(const(ins[1], "Conv weight").shape) - 2
            pads = list(a.get("pads", [0] * 2 * k))
            x = tensor(ins[0])
            if pads[:k] != pads[k:]:
                x = call(F.pad, x, sum(([pads[k + i], pads[i]] for i in reversed(range(k))), []))
                pads = [0] * 2 * k
            conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[k]
            y = call(conv, x, tensor(ins[1]), tensor(ins[2]) if len(ins) > 2 and ins[2] else None,
                     tuple(a.get("strides", [1] * k)), tuple(pads[:k]),
                     tuple(a.get("dilations", [1] * k)), a.get("group", 1))
        elif op == "Gemm":
            A, B = tensor(ins[0]), tensor(ins[1])
            if a.get("transA", 0):
                A = call(torch.t, A)
            alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
            if a.get("transB", 0) and alpha == 1.0 and beta == 1.0:
                y = call(F.linear, A, B, tensor(ins[2]) if len(ins) > 2 and ins[2] else None)
            else:
                if a.get("transB", 0):
                    B = call(torch.t, B)
                y = call(torch.matmul, A, B)
                if alpha != 1.0:
                    y = call(operator.mul, y, alpha)
                if len(ins) > 2 and ins[2]:
                    y = call(operator.add, y, call(operator.mul, tensor(ins[2]), beta))
        elif op in ("MatMul", "Add", "Sub", "Mul", "Div"):
            fn = {"MatMul": torch.matmul, "Add": operator.add, "Sub": operator.sub,
                  "Mul": operator.mul, "Div": operator.truediv}[op]
            y = call(fn, tensor(ins[0]), tensor(ins[1]))
        elif op in ("Relu", "Sigmoid", "Tanh", "HardSwish"):
            y = call({"Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
                      "HardSwish": F.hardswish}[op], tensor(ins[0]))
        elif op == "LeakyRelu":
            y = call(F.leaky_relu, tensor(ins[0]), a.get("alpha", 0.01))
        elif op == "Clip":
            lo = float(const(ins[1], "Clip min")) if len(ins) > 1 and ins[1] else a.get("min")
            hi = float(const(ins[2], "Clip max")) if len(ins) > 2 and ins[2] else a.get("max")
            if lo == 0.0 and hi == 6.0:
                y = call(F.relu6, tensor(ins[0]))
            else:
                y = call(torch.clamp, tensor(ins[0]), lo, hi)
        elif op == "HardSigmoid":
            alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
            if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
                y = call(F.hardsigmoid, tensor(ins[0]))
            else:
                y = call(torch.clamp, call(torch.add, call(operator.mul, tensor(ins[0]), alpha),
                                           beta), 0.0, 1.0)
        elif op == "BatchNormalization":
            y = call(F.batch_norm, tensor(ins[0]), tensor(ins[3]), tensor(ins[4]),
                     tensor(ins[1]), tensor(ins[2]), False, 0.0, a.get("epsilon", 1e-5))
        elif op in ("MaxPool", "AveragePool"):
            kernel = list(a["kernel_shape"])
            k = len(kernel)
            if k != 2 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
                raise Unsupported(f"{op} '{n.name}': only 2-D with explicit pads")
            pads = list(a.get("pads", [0] * 4))
            x = tensor(ins[0])
            if pads[:2] != pads[2:]:
                fill = float("-inf") if op == "MaxPool" else 0.0
                x = call(F.pad, x, [pads[1], pads[3], pads[0], pads[2]], "constant", fill)
                pads = [0] * 4
            strides = tuple(a.get("strides", [1, 1]))
            ceil = bool(a.get("ceil_mode", 0))
            if op == "MaxPool":
                y = call(F.max_pool2d, x, tuple(kernel), strides, tuple(pads[:2]),
                         tuple(a.get("dilations", [1, 1])), ceil)
            else:
                y = call(F.avg_pool2d, x, tuple(kernel), strides, tuple(pads[:2]), ceil,
                         bool(a.get("count_include_pad", 0)))
        elif op == "GlobalAveragePool":
            y = call(F.adaptive_avg_pool2d, tensor(ins[0]), 1)
        elif op == "GlobalMaxPool":
            y = call(F.adaptive_max_pool2d, tensor(ins[0]), 1)
        elif op == "ReduceMean":
            axes = a.get("axes")
            y = call(torch.mean, tensor(ins[0]), tuple(axes), bool(a.get("keepdims", 1)))
        elif op == "Flatten":
            axis = a.get("axis", 1)
            if axis < 0:
                raise Unsupported(f"Flatten '{n.name}': negative axis")
            y = call(torch.flatten, tensor(ins[0]), axis) if axis > 0 else \
                call(torch.reshape, tensor(ins[0]), (1, -1))
            if axis > 1:
                y = call(torch.flatten, y, 0, axis - 1)
        elif op == "Reshape":
            shape = [int(s) for s in const(ins[1], "Reshape shape")]
            if 0 in shape:  # ONNX's 0 copies the input's dimension: resolved at trace time
                x = tensor(ins[0])
                dims = [call(getattr, x, "shape")]
                shape = [call(operator.getitem, dims[0], i) if s == 0 else s
                         for i, s in enumerate(shape)]
            y = call(torch.reshape, tensor(ins[0]), tuple(shape))
        elif op == "Concat":
            y = call(torch.cat, [tensor(i) for i in ins], a.get("axis", 0))
        elif op == "Transpose":
            y = call(torch.permute, tensor(ins[0]), tuple(a["perm"]))
        elif op == "Split":
            axis = a.get("axis", 0)
            sizes = a.get("split")
            if len(ins) > 1 and ins[1]:
                sizes = [int(s) for s in const(ins[1], "Split sizes")]
            if sizes is None:
                raise Unsupported(f"Split '{n.name}': equal parts need the input's shape")
            parts = call(torch.split, tensor(ins[0]), list(sizes), axis)
            for i, out in enumerate(n.output):
                env[out] = call(operator.getitem, parts, i)
            continue
        elif op == "Slice":
            starts = const(ins[1], "Slice starts")
            ends = const(ins[2], "Slice ends")
            axes = const(ins[3], "Slice axes") if len(ins) > 3 and ins[3] else range(len(starts))
            steps = const(ins[4], "Slice steps") if len(ins) > 4 and ins[4] else [1] * len(starts)
            index = {int(ax): slice(int(s), int(e) if e < 2**62 else None, int(st))
                     for s, e, ax, st in zip(starts, ends, axes, steps)}
            if any(ax < 0 for ax in index):
                raise Unsupported(f"Slice '{n.name}': negative axes")
            key = tuple(index.get(d, slice(None)) for d in range(max(index) + 1))
            y = call(operator.getitem, tensor(ins[0]), key)
        elif op == "Softmax":
            y = call(F.softmax, tensor(ins[0]), a.get("axis", -1))
        elif op == "Pad":
            pads = [int(p) for p in const(ins[1], "Pad pads")]
            value = float(const(ins[2], "Pad value")) if len(ins) > 2 and ins[2] else 0.0
            mode = a.get("mode", b"constant").decode()
            r = len(pads) // 2
            torch_pads = sum(([pads[i], pads[r + i]] for i in reversed(range(r))), [])
            y = call(F.pad, tensor(ins[0]), torch_pads, mode, value if mode == "constant" else None)
        elif op in ("Squeeze", "Unsqueeze"):
            axes = a.get("axes")
            if len(ins) > 1 and ins[1]:
                axes = [int(x) for x in const(ins[1], f"{op} axes")]
            y = tensor(ins[0])
            for ax in (sorted(axes, reverse=True) if op == "Squeeze" else sorted(axes)):
                y = call(torch.squeeze if op == "Squeeze" else torch.unsqueeze, y, ax)
        else:  # Dropout, Identity
            y = tensor(ins[0])
        env[n.output[0]] = y

    outs = [tensor(o.name) for o in graph.output]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    return fx.GraphModule(root, g).eval(), len(inputs)


def torchvision_model(name):
    import torch
    import torchvision
    torch.manual_seed(0)  # the weights tests/models/export_torchvision.py exports
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=False)
    return getattr(torchvision.models, name)(**kwargs).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("inputs", nargs="+", help="one .npy per model input")
    ap.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    ap.add_argument("--torchvision", default="", help="eager module from torchvision instead")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
        import onnx  # noqa: F401
    except ImportError as e:
        fail(3, f"{e}: the PyTorch peer needs python3-torch, python3-numpy and python3-onnx")

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        eager, count = convert(a.model)
        if a.torchvision:
            eager, count = torchvision_model(a.torchvision), 1
    except Unsupported as e:
        fail(4, str(e))
    if count != len(a.inputs):
        fail(4, f"the model has {count} inputs; {len(a.inputs)} .npy files were given")
    xs = tuple(torch.from_numpy(np.load(p)) for p in a.inputs)
    variants = {"eager": eager}
    with torch.no_grad():
        traced = torch.jit.trace(eager, xs, check_trace=False)
        variants["torchscript"] = torch.jit.freeze(traced.eval())
        # freeze() works on a copy, so one trace serves both frozen variants.
        variants["optimized"] = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        for m in variants.values():  # the profiling executor specializes on the first runs
            for _ in range(3):
                m(*xs)
    print("ready " + " ".join(variants), flush=True)

    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] not in ("time", "output") or len(words) < 3 or words[1] not in variants:
            print(f"error unknown request '{line.strip()}'", flush=True)
            continue
        m = variants[words[1]]
        with torch.no_grad():
            if words[0] == "output":
                y = m(*xs)
                y = y[0] if isinstance(y, (tuple, list)) else y
                np.save(words[2], y.contiguous().numpy().astype(np.float32))
                print(f"wrote {words[2]}", flush=True)
                continue
            runs, min_time = int(words[2]), float(words[3]) if len(words) > 3 else 0.0
            m(*xs)
            ms = []
            start = time.perf_counter()
            while len(ms) < runs or time.perf_counter() - start < min_time:
                t = time.perf_counter()
                m(*xs)
                ms.append((time.perf_counter() - t) * 1e3)
        ms.sort()
        p90 = ms[min(len(ms) - 1, int(0.9 * (len(ms) - 1) + 0.5))]
        print(f"ms {ms[len(ms) // 2]:.6f} {ms[0]:.6f} {p90:.6f} {len(ms)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
