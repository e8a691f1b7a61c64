// kiln/graph/fuse.cpp — fuse_epilogues(): kernel ops and their epilogues become kiln.Conv and
// kiln.Dense nodes (graph/fused.h).
//
// Each Conv, Gemm or MatMul with a constant weight (in graph order) starts a kernel; then,
// while its current output has exactly one reader and is not a graph output, that reader is
// taken in if it is the next step of Epilogue's fixed order: + bias (an Add of a per-channel
// constant, merged with what is there), + residual (an Add of a non-constant tensor of the
// output's shape, either operand order), then relu or clip (a Clip with constant bounds). The
// fused node replaces the last node taken in, so everything it reads (the residual included) is
// computed before it. An Add, Relu or Clip that cannot be taken in gets a note saying why.
// Start with fuse_epilogues(), then start_conv() / start_dense() and take_in().
#include <optional>
#include <utility>

#include "graph/fused.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/rewrite.h"
#include "graph/window.h"

namespace kiln::graph {
namespace {

// A kernel node being formed.
struct Kernel {
    Node node;                         // kiln.Conv / kiln.Dense; inputs [X, W] so far
    std::optional<Tensor> new_weight;  // a weight to add as a constant (transposed, scaled)
    std::string new_weight_name;       // its name's base
    int64_t channels = 0;              // K (conv) or N (dense): the bias length
    size_t channel_axis = 1;           // of the output: 1 for conv, the last for dense
    std::vector<double> bias;          // per channel; empty when there is none yet
    ValueId bias_value = kNoId;        // a [channels] f32 constant equal to `bias`, reusable
    ValueId residual = kNoId;
    Epilogue epilogue;
    std::vector<std::string> absorbed;  // labels of the nodes taken in
};

std::vector<double> to_double(const Tensor& t) {
    const float* p = t.data<float>();
    return std::vector<double>(p, p + t.numel());
}

// Takes over an existing kiln.Conv or kiln.Dense, so that running the pass again extends it.
void resume(const Graph& g, const Node& n, Kernel& k) {
    k.node = n;
    k.node.inputs.resize(2);
    k.epilogue = fused_epilogue(n);
    const Value& w = required_input(g, n, kFusedWeight, "W");
    k.channels = w.shape.at(0);
    k.channel_axis = n.op == kFusedConv ? 1 : g.value(n.outputs.at(0)).shape.size() - 1;
    if (const Value* b = input(g, n, kFusedBias); b && b->is_constant()) {
        k.bias = to_double(*b->data);
        k.bias_value = n.inputs[kFusedBias];
    }
    if (input(g, n, kFusedResidual)) k.residual = n.inputs[kFusedResidual];
}

std::string start_conv(const Graph& g, const Node& n, Kernel& k) {
    if (n.op == kFusedConv) {
        resume(g, n, k);
        return "";
    }
    const Value& x = required_input(g, n, 0, "X");
    const Value& w = required_input(g, n, 1, "W");
    const Value* b = input(g, n, 2);
    if (!w.is_constant())
        return "its weight '" + w.name + "' is computed at run time; kiln's convolutions take a " +
               "constant weight";
    if (b && !b->is_constant()) return "its bias '" + b->name + "' is computed at run time";
    if (std::string r = require_f32(n, g); !r.empty()) return r;
    if (x.shape.size() < 3 || w.shape.size() != x.shape.size())
        return "input " + shape_string(x.shape) + " and weight " + shape_string(w.shape) +
               " are not a convolution's";
    const std::vector<int64_t> spatial(x.shape.begin() + 2, x.shape.end());
    const std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
    Window win;
    try {
        win = make_window(n, spatial, kernel, false, true);
    } catch (const Error& e) {
        return e.what();
    }
    k.node.op = kFusedConv;
    k.node.name = n.name;
    k.node.source_index = n.source_index;
    k.node.attrs = n.attrs;
    // Explicit geometry: what a Workload needs reads straight off the node.
    const size_t lead = 3 - static_cast<size_t>(win.rank);
    std::vector<int64_t> pads, strides, dilations;
    for (size_t i = lead; i < 3; ++i) {
        pads.push_back(win.pad_begin[i]);
        strides.push_back(win.stride[i]);
        dilations.push_back(win.dilation[i]);
    }
    for (size_t i = lead; i < 3; ++i)
        pads.push_back(win.pad_end[i]);
    k.node.attrs.erase("auto_pad");
    k.node.attrs["pads"] = pads;
    k.node.attrs["strides"] = strides;
    k.node.attrs["dilations"] = dilations;
    k.node.attrs["kernel_shape"] = kernel;
    k.node.attrs["group"] = n.attr_int("group", 1);
    k.node.inputs = {n.inputs[0], n.inputs[1]};
    k.channels = w.shape[0];
    k.channel_axis = 1;
    if (b) {
        k.bias = to_double(*b->data);
        k.bias_value = n.inputs[2];
        k.epilogue.bias = true;
    }
    return "";
}

// Whether constant `t` adds one value per channel to an output of `out` shape: every dimension
// 1 except the channel axis (1 or `channels`), right-aligned. Returns the per-channel values.
std::optional<std::vector<double>> per_channel(const Tensor& t, const std::vector<int64_t>& out,
                                               size_t axis, int64_t channels) {
    if (t.dtype != DType::f32 || t.shape.size() > out.size()) return std::nullopt;
    const size_t lead = out.size() - t.shape.size();
    int64_t along = 1;
    for (size_t d = 0; d < t.shape.size(); ++d) {
        const int64_t dim = t.shape[d];
        if (lead + d == axis) {
            if (dim != 1 && dim != channels) return std::nullopt;
            along = dim;
        } else if (dim != 1) {
            return std::nullopt;
        }
    }
    std::vector<double> v(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c)
        v[c] = t.data<float>()[along == 1 ? 0 : c];
    return v;
}

std::string start_dense(const Graph& g, const Node& n, Kernel& k) {
    if (n.op == kFusedDense) {
        resume(g, n, k);
        return "";
    }
    const Value& a = required_input(g, n, 0, "A");
    const Value& b = required_input(g, n, 1, "B");
    if (!b.is_constant())
        return "its B '" + b.name + "' is computed at run time; kiln's dense takes a constant " +
               "weight";
    if (std::string r = require_f32(n, g); !r.empty()) return r;
    const Tensor& bt = *b.data;
    const bool gemm = n.op == "Gemm";
    const bool tb = gemm && n.attr_int("transB", 0) != 0;
    const float alpha = gemm ? n.attr_float("alpha", 1.0f) : 1.0f;
    if (gemm && n.attr_int("transA", 0) != 0)
        return "transA=1; kiln's dense reads its input untransposed";
    if (bt.shape.size() != 2) return "its B " + shape_string(bt.shape) + " is not 2-D";
    if (a.shape.size() < 2) return "its A " + shape_string(a.shape) + " is 1-D";
    const int64_t kk = tb ? bt.shape[1] : bt.shape[0], nn = tb ? bt.shape[0] : bt.shape[1];
    const std::vector<int64_t>& out = g.value(n.outputs.at(0)).shape;

    k.node.op = kFusedDense;
    k.node.name = n.name;
    k.node.source_index = n.source_index;
    k.node.inputs = {n.inputs[0], n.inputs[1]};
    k.channels = nn;
    k.channel_axis = out.size() - 1;
    if (!tb || alpha != 1.0f) {
        // dense wants W [N, K]: row j is output feature j. Gemm's alpha is folded in.
        Tensor w = Tensor::zeros(DType::f32, {nn, kk});
        const float* src = bt.data<float>();
        for (int64_t j = 0; j < nn; ++j)
            for (int64_t p = 0; p < kk; ++p)
                w.data<float>()[j * kk + p] = static_cast<float>(
                    static_cast<double>(alpha) * (tb ? src[j * kk + p] : src[p * nn + j]));
        k.new_weight = std::move(w);
        k.new_weight_name = b.name + (tb ? ".scaled" : ".T");
    }
    const Value* c = gemm ? input(g, n, 2) : nullptr;
    if (!c) return "";
    const float beta = n.attr_float("beta", 1.0f);
    if (c->is_constant()) {
        std::optional<std::vector<double>> bias =
            per_channel(*c->data, out, k.channel_axis, k.channels);
        if (!bias)
            return "its C " + shape_string(c->shape) + " is not one value per output column; " +
                   "kiln's dense adds a bias [N]";
        for (double& v : *bias)
            v *= beta;
        k.bias = *bias;
        if (beta == 1.0f && c->shape == std::vector<int64_t>{nn}) k.bias_value = n.inputs[2];
        k.epilogue.bias = true;
        return "";
    }
    if (c->shape != out || beta != 1.0f)
        return "its C '" + c->name + "' is computed at run time and is not an " +
               shape_string(out) + " tensor added with beta 1 (a residual)";
    k.residual = n.inputs[2];
    k.epilogue.residual = true;
    return "";
}

bool is_epilogue_op(const std::string& op) {
    return op == "Add" || op == "Relu" || op == "Clip";
}

// Takes node `c`, which reads the kernel's current output `cur`, into the kernel's epilogue.
// Returns false when it cannot: `why` then says why, or is empty when `c` is not an epilogue op
// at all.
bool take_in(const Graph& g, const Node& c, ValueId cur, Kernel& k, std::string& why) {
    if (!is_epilogue_op(c.op) || c.outputs.size() != 1) return false;
    auto refuse = [&why](std::string reason) {
        why = std::move(reason);
        return false;
    };
    const std::vector<int64_t>& shape = g.value(cur).shape;
    const Activation act = k.epilogue.activation;
    if (g.value(c.outputs[0]).shape != shape) {
        return refuse("it broadcasts the kernel's output " + shape_string(shape) + " to " +
                      shape_string(g.value(c.outputs[0]).shape));
    }
    if (c.op == "Relu") {
        if (act != Activation::none) return refuse("a second activation");
        k.epilogue.activation = Activation::relu;
        return true;
    }
    if (c.op == "Clip") {
        const Value* lo = input(g, c, 1);
        const Value* hi = input(g, c, 2);
        for (const Value* v : {lo, hi})
            if (v && !v->is_constant())
                return refuse(std::string(v == lo ? "its min '" : "its max '") + v->name +
                              "' is computed at run time");
        if (act != Activation::none) return refuse("a second activation");
        if (!lo) return refuse("it has no lower bound; the epilogue's clip has both");
        const float min = scalar_f32(*lo->data);
        if (!hi) {
            if (min != 0.0f) return refuse("it has no upper bound and a min other than 0");
            k.epilogue.activation = Activation::relu;
            return true;
        }
        const float max = scalar_f32(*hi->data);
        if (!(min <= max)) return refuse("its min is above its max");
        k.epilogue.activation = Activation::clip;
        k.epilogue.clip_min = min;
        k.epilogue.clip_max = max;
        return true;
    }
    // Add: a per-channel constant is bias, a same-shape tensor the residual.
    const ValueId other_id = c.inputs.at(0) == cur ? c.inputs.at(1) : c.inputs.at(0);
    const Value& other = g.value(other_id);
    if (other.dtype != DType::f32) return refuse("its other operand is not f32");
    if (other.is_constant()) {
        if (act != Activation::none || k.epilogue.residual)
            return refuse(std::string("a bias added after the ") +
                          (act != Activation::none ? "activation" : "residual") +
                          "; the epilogue adds bias, then the residual, then the activation");
        std::optional<std::vector<double>> bias =
            per_channel(*other.data, shape, k.channel_axis, k.channels);
        if (!bias)
            return refuse("its constant '" + other.name + "' " + shape_string(other.shape) +
                          " is not one value per channel of " + shape_string(shape));
        if (k.bias.empty()) {
            k.bias = *bias;
            k.bias_value = other.shape == std::vector<int64_t>{k.channels} ? other_id : kNoId;
        } else {
            for (size_t i = 0; i < k.bias.size(); ++i)
                k.bias[i] += (*bias)[i];
            k.bias_value = kNoId;
        }
        k.epilogue.bias = true;
        return true;
    }
    if (other.shape != shape)
        return refuse("'" + other.name + "' " + shape_string(other.shape) +
                      " is neither a per-channel constant nor a tensor of the output's shape " +
                      shape_string(shape));
    if (act != Activation::none) return refuse("a residual added after the activation");
    if (k.epilogue.residual) return refuse("the kernel already adds a residual");
    k.residual = other_id;
    k.epilogue.residual = true;
    return true;
}

std::string start(const Graph& g, const Node& n, Kernel& k) {
    if (n.op == "Conv" || n.op == kFusedConv) return start_conv(g, n, k);
    if (n.op == "Gemm" || n.op == "MatMul" || n.op == kFusedDense) return start_dense(g, n, k);
    return "not a Conv, Gemm or MatMul";
}

// The finished kernel node, with its new constants added to the graph.
Node finish(Graph& g, Kernel& k, ValueId out) {
    Node f = std::move(k.node);
    const std::string base = !f.name.empty() ? f.name : g.value(out).name;
    if (k.new_weight) f.inputs[kFusedWeight] = add_constant(g, k.new_weight_name, *k.new_weight);
    f.inputs.resize(4, kNoId);
    if (!k.bias.empty()) {
        if (k.bias_value == kNoId) {
            Tensor t = Tensor::zeros(DType::f32, {k.channels});
            for (int64_t c = 0; c < k.channels; ++c)
                t.data<float>()[c] = static_cast<float>(k.bias[c]);
            k.bias_value = add_constant(g, base + ".bias", std::move(t));
        }
        f.inputs[kFusedBias] = k.bias_value;
    }
    f.inputs[kFusedResidual] = k.residual;
    set_fused_epilogue(f, k.epilogue);
    std::vector<std::string> taken;
    if (std::string before = f.attr_string("fused", ""); !before.empty()) taken.push_back(before);
    taken.insert(taken.end(), k.absorbed.begin(), k.absorbed.end());
    if (!taken.empty()) f.attrs["fused"] = join(taken);
    f.outputs = {out};
    return f;
}

}  // namespace

std::string kernel_refusal(const Graph& g, const Node& n) {
    Kernel k;
    return start(g, n, k);
}

PassResult fuse_epilogues(Graph& g) {
    PassResult r;
    const Uses uses(g);
    std::vector<char> dead(g.nodes.size(), 0);  // taken into a kernel placed elsewhere
    std::vector<char> done(g.nodes.size(), 0);  // a kernel node placed here
    // Why an Add, Relu or Clip did not join a kernel; kept only if it joins no kernel at all
    // (an Add one conv cannot take may be the residual of the next).
    std::vector<std::pair<NodeId, std::string>> misses;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (dead[i] || done[i]) continue;
        const Node& n = g.nodes[i];
        if (n.op != "Conv" && n.op != "Gemm" && n.op != "MatMul" && !is_fused_kernel(n)) continue;
        Kernel k;
        if (std::string why = start(g, n, k); !why.empty()) {
            r.notes.push_back(n.label() + " stays: " + why);
            continue;
        }
        const std::string label = n.label();
        ValueId cur = n.outputs.at(0);
        NodeId tail = static_cast<NodeId>(i);
        std::vector<NodeId> chain = {tail};
        for (;;) {
            const std::vector<NodeId>& readers = uses.readers[cur];
            NodeId next = kNoId;  // an Add, Relu or Clip reading `cur`, for the note
            for (NodeId j : readers)
                if (next == kNoId && is_epilogue_op(g.nodes[j].op)) next = j;
            if (uses.is_output[cur] || uses.reads[cur] != 1) {
                if (next != kNoId) {
                    std::vector<std::string> who;
                    for (NodeId j : readers)
                        who.push_back(g.nodes[j].label());
                    misses.emplace_back(
                        next,
                        g.nodes[next].label() + " not fused into " + label + ": '" +
                            g.value(cur).name + "' " +
                            (uses.is_output[cur] ? std::string("is a graph output")
                                                 : "is read " + std::to_string(uses.reads[cur]) +
                                                       " times (by " + join(who) + ")"));
                }
                break;
            }
            const NodeId j = readers.at(0);
            if (dead[j] || done[j]) break;
            std::string why;
            if (!take_in(g, g.nodes[j], cur, k, why)) {
                if (!why.empty())
                    misses.emplace_back(
                        j, g.nodes[j].label() + " not fused into " + label + ": " + why);
                break;
            }
            k.absorbed.push_back(g.nodes[j].label());
            chain.push_back(j);
            cur = g.nodes[j].outputs.at(0);
            tail = j;
        }
        const bool resumed = is_fused_kernel(n);
        if (resumed && chain.size() == 1) continue;  // an existing kernel node, unchanged
        const int absorbed = static_cast<int>(chain.size()) - 1;
        Node fused = finish(g, k, cur);
        for (NodeId c : chain)
            if (c != tail) dead[c] = 1;
        g.nodes[tail] = std::move(fused);
        done[tail] = 1;
        if (!resumed) ++r.changed;
        if (absorbed > 0) ++r.fused;
        r.absorbed += absorbed;
    }
    for (const auto& [j, note] : misses)
        if (!dead[j] && !done[j]) r.notes.push_back(note);
    if (r.changed || r.absorbed) {
        erase_nodes(g, dead);
        g.prune();
    }
    return r;
}

}  // namespace kiln::graph
