// kiln/graph/fold_bn.cpp — fold_batch_norm(): Conv -> BatchNormalization becomes one Conv.
//
// Inference BN is y = (x - mean) * s + beta with s = scale / sqrt(var + eps), per channel k, so
// on a convolution's output it folds into the convolution: W'[k] = W[k] * s[k] and
// b'[k] = (b[k] - mean[k]) * s[k] + beta[k]. Computed in double, stored as f32, so the folded
// graph agrees with the original to about 1e-6 relative. A BN that cannot fold stays, with a
// note saying why.
#include <cmath>
#include <memory>

#include "graph/fused.h"
#include "graph/op.h"
#include "graph/passes.h"
#include "graph/rewrite.h"

namespace kiln::graph {
namespace {

// Folds BatchNormalization node `b` into the Conv before it and returns "", or returns why not
// (and changes nothing).
std::string fold_one(Graph& g, const Uses& uses, NodeId b) {
    const Node& bn = g.nodes[b];
    static const char* const kParams[] = {"scale", "B", "mean", "var"};
    std::shared_ptr<const Tensor> p[4];
    for (size_t i = 0; i < 4; ++i) {
        const Value* v = input(g, bn, i + 1);
        if (!v || !v->is_constant())
            return std::string("its ") + kParams[i] + " is computed at run time";
        if (v->dtype != DType::f32)
            return std::string("its ") + kParams[i] + " is " + std::string(to_string(v->dtype));
        p[i] = v->data;
    }
    if (bn.outputs.size() != 1) return "it has training-mode outputs";
    const ValueId x = bn.inputs.at(0);
    const Value& xv = g.value(x);
    if (xv.producer == kNoId)
        return "its input '" + xv.name + "' is a graph input or a constant, not a Conv's output";
    Node& conv = g.nodes[xv.producer];
    const bool fused = conv.op == kFusedConv;
    if (conv.op != "Conv" && !fused)
        return "its input '" + xv.name + "' comes from " + conv.label() + ", not from a Conv";
    if (fused) {
        Epilogue e = fused_epilogue(conv);
        if (e.residual || e.activation != Activation::none)
            return "its input comes from " + conv.label() + ", whose epilogue '" + e.to_string() +
                   "' adds a residual or an activation before it";
    }
    if (uses.is_output[x]) return "its input '" + xv.name + "' is also a graph output";
    if (uses.reads[x] != 1) {
        std::vector<std::string> readers;
        for (NodeId r : uses.readers[x])
            readers.push_back(g.nodes[r].label());
        return "its input '" + xv.name + "' is read " + std::to_string(uses.reads[x]) +
               " times (by " + join(readers) + ")";
    }
    const Value* w = input(g, conv, 1);
    if (!w || !w->is_constant())
        return "the weight of " + conv.label() + " is computed at run time";
    if (w->dtype != DType::f32 || w->shape.empty())
        return "the weight of " + conv.label() + " is not an f32 tensor";
    const Value* bias = input(g, conv, 2);
    if (bias && !bias->is_constant())
        return "the bias of " + conv.label() + " is computed at run time";

    const int64_t k = w->shape[0];
    for (size_t i = 0; i < 4; ++i)
        if (p[i]->numel() != k)
            return std::string("its ") + kParams[i] + " has " + std::to_string(p[i]->numel()) +
                   " values for " + std::to_string(k) + " channels";
    const std::shared_ptr<const Tensor> wdata = w->data;
    const std::shared_ptr<const Tensor> bdata = bias ? bias->data : nullptr;
    const std::string wname = w->name;
    const double eps = bn.attr_float("epsilon", 1e-5f);
    const float *scale = p[0]->data<float>(), *beta = p[1]->data<float>(),
                *mean = p[2]->data<float>(), *var = p[3]->data<float>();

    Tensor nw = Tensor::zeros(DType::f32, wdata->shape);
    Tensor nb = Tensor::zeros(DType::f32, {k});
    const int64_t per = wdata->numel() / k;
    for (int64_t c = 0; c < k; ++c) {
        const double s = scale[c] / std::sqrt(static_cast<double>(var[c]) + eps);
        for (int64_t j = 0; j < per; ++j)
            nw.data<float>()[c * per + j] =
                static_cast<float>(static_cast<double>(wdata->data<float>()[c * per + j]) * s);
        const double b0 = bdata ? bdata->data<float>()[c] : 0.0;
        nb.data<float>()[c] = static_cast<float>((b0 - mean[c]) * s + beta[c]);
    }
    const std::string base = conv.name.empty() ? xv.name : conv.name;
    const ValueId out = bn.outputs[0];
    const std::string bn_label = bn.label();
    const ValueId nw_id = add_constant(g, wname + ".bn_folded", std::move(nw));
    const ValueId nb_id = add_constant(g, base + ".bias", std::move(nb));
    if (conv.inputs.size() < 3) conv.inputs.resize(3, kNoId);
    conv.inputs[1] = nw_id;
    conv.inputs[2] = nb_id;
    if (fused) {
        Epilogue e = fused_epilogue(conv);
        e.bias = true;
        set_fused_epilogue(conv, e);
    }
    // For people reading the graph: which nodes this one now stands for.
    std::string taken = conv.attr_string("fused", "");
    conv.attrs["fused"] = taken.empty() ? bn_label : taken + ", " + bn_label;
    // The Conv makes the BN's output; a second BN right after it can fold too.
    conv.outputs[0] = out;
    g.value(out).producer = g.value(x).producer;
    return "";
}

}  // namespace

PassResult fold_batch_norm(Graph& g) {
    PassResult r;
    const Uses uses(g);
    std::vector<char> dead(g.nodes.size(), 0);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        if (g.nodes[i].op != "BatchNormalization") continue;
        std::string why = fold_one(g, uses, static_cast<NodeId>(i));
        if (why.empty()) {
            dead[i] = 1;
            ++r.changed;
        } else {
            r.notes.push_back(g.nodes[i].label() + " stays: " + why);
        }
    }
    if (r.changed) {
        erase_nodes(g, dead);
        g.prune();
    }
    return r;
}

}  // namespace kiln::graph
