// kiln/bench/layer.cpp — parsing layers.json and the shapes the peers need.
#include "bench/layer.h"

#include <fstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/op.h"

namespace kiln::bench {
namespace {

int64_t field(const Layer& l, const char* name) {
    auto it = l.fields.find(name);
    if (it == l.fields.end() || !it->is_number_integer())
        throw Error(name, fmt::format("layer '{}': missing or not an integer", l.id));
    return it->get<int64_t>();
}

int64_t field_or(const Layer& l, const char* name, int64_t fallback) {
    return l.fields.contains(name) ? field(l, name) : fallback;
}

}  // namespace

double Layer::flops() const {
    if (is_conv)
        return 2.0 * conv.n * conv.k * conv.oh() * conv.ow() * (conv.c / conv.groups) * conv.r *
               conv.s;
    return 2.0 * gemm.m * gemm.n * gemm.k;
}

int64_t Layer::input_numel() const {
    return is_conv ? conv.n * conv.c * conv.h * conv.w : gemm.m * gemm.k;
}

int64_t Layer::weight_numel() const {
    return is_conv ? conv.k * (conv.c / conv.groups) * conv.r * conv.s : gemm.n * gemm.k;
}

int64_t Layer::output_numel() const {
    return is_conv ? conv.n * conv.k * conv.oh() * conv.ow() : gemm.m * gemm.n;
}

std::string Layer::shape_text() const {
    if (!is_conv) return fmt::format("m={},n={},k={}", gemm.m, gemm.n, gemm.k);
    const ConvDims& d = conv;
    return fmt::format("n={},c={},h={},w={},k={},r={},s={},stride={},pad={},dilation={},groups={}",
                       d.n, d.c, d.h, d.w, d.k, d.r, d.s, d.stride, d.pad, d.dilation, d.groups);
}

Workload Layer::to_workload() const {
    const OpDef& def = find_op(op);
    std::string shape;
    for (const ParamSpec& p : def.params()) {
        if (!fields.contains(p.name)) continue;  // the op's default applies, or validate() names it
        shape +=
            fmt::format("{}{}={}", shape.empty() ? "" : ",", p.name, field(*this, p.name.c_str()));
    }
    DType dtype = parse_dtype(fields.value("dtype", std::string("f32")));
    return Workload::from_shape(op, shape, dtype);
}

Layer parse_layer(const nlohmann::json& j, const std::string& where) {
    Layer l;
    l.fields = j;
    l.id = j.value("id", std::string());
    l.op = j.value("op", std::string());
    l.model = j.value("model", std::string());
    if (l.id.empty() || l.op.empty()) throw Error("layers", where + ": no id or op");
    if (l.op == "dense") {
        l.gemm = {field(l, "m"), field(l, "n"), field(l, "k")};
    } else if (l.fields.contains("r")) {
        l.is_conv = true;
        ConvDims& d = l.conv;
        d.n = field_or(l, "n", 1);
        d.c = field(l, "c");
        d.h = field(l, "h");
        d.w = field(l, "w");
        d.k = field_or(l, "k", d.c);
        d.r = field(l, "r");
        d.s = field(l, "s");
        d.stride = field_or(l, "stride", 1);
        d.pad = field_or(l, "pad", 0);
        d.dilation = field_or(l, "dilation", 1);
        // Depthwise workloads have no groups parameter: one group per channel.
        d.groups = field_or(l, "groups", l.op == "depthwise_conv2d" ? d.c : 1);
        if (d.c % d.groups != 0 || d.k % d.groups != 0 || d.oh() < 1 || d.ow() < 1)
            throw Error("layers", fmt::format("{}: layer '{}' has an invalid shape", where, l.id));
    } else {
        throw Error("layers", fmt::format("{}: layer '{}': op '{}' is neither a convolution "
                                          "(r, s, ...) nor dense (m, n, k)",
                                          where, l.id, l.op));
    }
    return l;
}

std::vector<Layer> load_layers(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error("layers", "cannot open " + path);
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error("layers", path + ": " + e.what());
    }
    if (!doc.contains("layers") || !doc["layers"].is_array())
        throw Error("layers", path + ": no \"layers\" array");
    std::vector<Layer> layers;
    for (const auto& j : doc["layers"])
        layers.push_back(parse_layer(j, fmt::format("{} (layer #{})", path, layers.size())));
    return layers;
}

}  // namespace kiln::bench
