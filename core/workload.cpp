#include "core/workload.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/op.h"

namespace kiln {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : s) {
        if (ch == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += ch;
        }
    }
    out.push_back(cur);
    return out;
}

std::string format_float(float v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

int64_t parse_int(const std::string& text, const std::string& field) {
    if (text.empty()) throw Error(field, "expected an integer, got nothing");
    size_t i = (text[0] == '-') ? 1 : 0;
    if (i == text.size()) throw Error(field, "expected an integer, got '" + text + "'");
    for (; i < text.size(); ++i)
        if (!std::isdigit(static_cast<unsigned char>(text[i])))
            throw Error(field, "expected an integer, got '" + text + "'");
    try {
        return std::stoll(text);
    } catch (const std::exception&) {
        throw Error(field, "integer out of range: '" + text + "'");
    }
}

// "2" -> {2}; "2x1" -> {2, 1}; expanded to the parameter's arity when a single value is given.
std::vector<int64_t> parse_values(const std::string& text, const ParamSpec& p) {
    std::vector<int64_t> v;
    for (const auto& part : split(text, 'x'))
        v.push_back(parse_int(part, p.name));
    if (v.size() == 1) v.assign(p.arity, v[0]);
    if (static_cast<int>(v.size()) != p.arity)
        throw Error(p.name,
                    "expected 1 or " + std::to_string(p.arity) + " values, got '" + text + "'");
    return v;
}

std::string format_values(const std::vector<int64_t>& v) {
    bool all_equal = true;
    for (int64_t x : v)
        all_equal = all_equal && x == v[0];
    if (all_equal) return std::to_string(v[0]);
    std::string s;
    for (size_t i = 0; i < v.size(); ++i)
        s += (i ? "x" : "") + std::to_string(v[i]);
    return s;
}

}  // namespace

// ---- Epilogue ---------------------------------------------------------------------------------

std::string Epilogue::to_string() const {
    std::vector<std::string> parts;
    if (bias) parts.push_back("bias");
    if (residual) parts.push_back("add");
    if (activation == Activation::relu) parts.push_back("relu");
    if (activation == Activation::clip) {
        if (clip_min == 0.0f && clip_max == 6.0f)
            parts.push_back("relu6");
        else
            parts.push_back("clip" + format_float(clip_min) + ":" + format_float(clip_max));
    }
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i)
        s += (i ? "+" : "") + parts[i];
    return s;
}

Epilogue Epilogue::parse(const std::string& text) {
    Epilogue e;
    if (text.empty() || text == "none") return e;
    for (const auto& part : split(text, '+')) {
        if (part == "bias") {
            e.bias = true;
        } else if (part == "add" || part == "residual") {
            e.residual = true;
        } else if (part == "relu") {
            e.activation = Activation::relu;
        } else if (part == "relu6") {
            e.activation = Activation::clip;
            e.clip_min = 0.0f;
            e.clip_max = 6.0f;
        } else if (part.rfind("clip", 0) == 0 && part.find(':') != std::string::npos) {
            auto bounds = split(part.substr(4), ':');
            try {
                e.activation = Activation::clip;
                e.clip_min = std::stof(bounds.at(0));
                e.clip_max = std::stof(bounds.at(1));
            } catch (const std::exception&) {
                throw Error("epilogue", "bad clip bounds in '" + part + "' (want clipLO:HI)");
            }
            if (!(e.clip_min <= e.clip_max))
                throw Error("epilogue", "clip minimum above maximum in '" + part + "'");
        } else {
            throw Error("epilogue", "unknown epilogue part '" + part +
                                        "' (known: bias, add, relu, relu6, clipLO:HI)");
        }
    }
    return e;
}

float Epilogue::apply(float acc, float bias_value, float residual_value) const {
    if (bias) acc += bias_value;
    if (residual) acc += residual_value;
    if (activation == Activation::relu) acc = acc > 0.0f ? acc : 0.0f;
    if (activation == Activation::clip) acc = std::fmin(std::fmax(acc, clip_min), clip_max);
    return acc;
}

bool Epilogue::operator==(const Epilogue& o) const {
    return to_string() == o.to_string();
}

// ---- Blocking ---------------------------------------------------------------------------------

std::string Blocking::to_string() const {
    std::string s;
    if (input) s += "i" + std::to_string(input);
    if (residual) s += "r" + std::to_string(residual);
    if (output) s += "o" + std::to_string(output);
    return s;
}

Blocking Blocking::parse(const std::string& text) {
    Blocking b;
    size_t pos = 0;
    while (pos < text.size()) {
        const char which = text[pos++];
        int64_t* slot = which == 'i'   ? &b.input
                        : which == 'r' ? &b.residual
                        : which == 'o' ? &b.output
                                       : nullptr;
        if (!slot)
            throw Error("layout",
                        "expected i, r or o at '" + text.substr(pos - 1) + "' in '" + text + "'");
        size_t end = pos;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])))
            ++end;
        *slot = parse_int(text.substr(pos, end - pos), "layout");
        if (*slot < 1)
            throw Error("layout", "block of " + std::string(1, which) + " must be positive in '" +
                                      text + "'");
        pos = end;
    }
    return b;
}

std::vector<int64_t> blocked_shape(const std::vector<int64_t>& nchw, int64_t b) {
    if (b == 0) return nchw;
    if (nchw.size() != 4)
        throw Error("layout",
                    "only NCHW tensors can be blocked, not rank " + std::to_string(nchw.size()));
    return {nchw[0], nchw[1] / b, nchw[2], nchw[3], b};
}

// ---- Workload ---------------------------------------------------------------------------------

const OpDef& Workload::def() const {
    return find_op(op);
}

const std::vector<int64_t>& Workload::values(const std::string& name) const {
    auto it = params.find(name);
    if (it == params.end()) throw Error(name, "missing parameter of " + op);
    return it->second;
}

int64_t Workload::get(const std::string& name, size_t index) const {
    const auto& v = values(name);
    if (index >= v.size()) throw Error(name, "has no value #" + std::to_string(index));
    return v[index];
}

std::string Workload::key() const {
    const OpDef& d = def();
    std::map<int, std::string> groups;
    for (const auto& p : d.params())
        groups[p.group] += p.token + format_values(values(p.name));
    std::string k = op;
    for (const auto& [g, text] : groups)
        k += "/" + text;
    k += "/" + std::string(kiln::to_string(dtype));
    if (!epilogue.empty()) k += "/" + epilogue.to_string();
    if (!layout.plain()) k += "/layout:" + layout.to_string();
    return k;
}

Workload Workload::parse_key(const std::string& key) {
    auto seg = split(key, '/');
    Workload w;
    w.op = seg[0];
    const OpDef& d = w.def();
    int ngroups = 0;
    for (const auto& p : d.params())
        ngroups = std::max(ngroups, p.group + 1);
    const std::string layout_tag = "layout:";
    if (seg.size() > 1 && seg.back().compare(0, layout_tag.size(), layout_tag) == 0) {
        w.layout = Blocking::parse(seg.back().substr(layout_tag.size()));
        seg.pop_back();
    }
    if (static_cast<int>(seg.size()) < ngroups + 2 || static_cast<int>(seg.size()) > ngroups + 3)
        throw Error("key", "'" + key + "' does not have the segments of a " + w.op + " key");
    for (int g = 0; g < ngroups; ++g) {
        const std::string& text = seg[1 + g];
        size_t pos = 0;
        for (const auto& p : d.params()) {
            if (p.group != g) continue;
            if (text.compare(pos, p.token.size(), p.token) != 0)
                throw Error("key", "expected '" + p.token + "' at '" + text.substr(pos) + "' in '" +
                                       key + "'");
            pos += p.token.size();
            size_t end = pos;
            while (end < text.size() &&
                   (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '-' ||
                    (text[end] == 'x' && end + 1 < text.size() &&
                     std::isdigit(static_cast<unsigned char>(text[end + 1])))))
                ++end;
            w.params[p.name] = parse_values(text.substr(pos, end - pos), p);
            pos = end;
        }
        if (pos != text.size())
            throw Error("key", "unexpected '" + text.substr(pos) + "' in '" + key + "'");
    }
    w.dtype = parse_dtype(seg[1 + ngroups], "key");
    if (static_cast<int>(seg.size()) == ngroups + 3) w.epilogue = Epilogue::parse(seg.back());
    w.validate();
    return w;
}

Workload Workload::from_shape(const std::string& op, const std::string& shape, DType dtype,
                              Epilogue epilogue) {
    Workload w;
    w.op = op;
    w.dtype = dtype;
    w.epilogue = epilogue;
    const OpDef& d = w.def();
    if (!shape.empty()) {
        for (const auto& item : split(shape, ',')) {
            auto eq = item.find('=');
            if (eq == std::string::npos)
                throw Error("shape", "expected name=value, got '" + item + "'");
            std::string name = item.substr(0, eq);
            const ParamSpec* spec = nullptr;
            for (const auto& p : d.params())
                if (p.name == name || p.token == name) spec = &p;
            if (!spec) {
                std::string known;
                for (const auto& p : d.params())
                    known += (known.empty() ? "" : ", ") + p.name;
                throw Error(name, "not a parameter of " + op + " (known: " + known + ")");
            }
            w.params[spec->name] = parse_values(item.substr(eq + 1), *spec);
        }
    }
    for (const auto& p : d.params())
        if (!w.params.count(p.name) && p.default_value >= 0)
            w.params[p.name] = std::vector<int64_t>(p.arity, p.default_value);
    w.validate();
    return w;
}

void Workload::validate() const {
    const OpDef& d = def();
    for (const auto& p : d.params()) {
        auto it = params.find(p.name);
        if (it == params.end()) throw Error(p.name, "missing parameter of " + op);
        if (static_cast<int>(it->second.size()) != p.arity)
            throw Error(p.name, "expected " + std::to_string(p.arity) + " values, got " +
                                    std::to_string(it->second.size()));
        for (int64_t v : it->second)
            if (v < p.min_value)
                throw Error(p.name, "must be at least " + std::to_string(p.min_value) + ", got " +
                                        std::to_string(v));
    }
    for (const auto& [name, v] : params) {
        bool known = false;
        for (const auto& p : d.params())
            known = known || p.name == name;
        if (!known) throw Error(name, "not a parameter of " + op);
    }
    bool dtype_ok = false;
    for (DType t : d.dtypes())
        dtype_ok = dtype_ok || t == dtype;
    if (!dtype_ok)
        throw Error("dtype", std::string(kiln::to_string(dtype)) + " is not supported by " + op);
    if (!layout.plain()) {
        if (!d.blockable()) throw Error("layout", op + " has no blocked layout");
        for (int64_t b : {layout.input, layout.residual, layout.output})
            if (b < 0 || (b & (b - 1)) != 0)
                throw Error("layout", "blocks are powers of two, got '" + layout.to_string() + "'");
        if (layout.residual && !epilogue.residual)
            throw Error("layout", "a blocked residual without a residual in the epilogue");
    }
    d.check(*this);
}

double Workload::flops() const {
    double f = def().flops(*this);
    double out = static_cast<double>(output().numel());
    if (epilogue.bias) f += out;
    if (epilogue.residual) f += out;
    if (epilogue.activation != Activation::none) f += out;
    return f;
}

std::vector<TensorSpec> Workload::inputs() const {
    auto t = def().operands(*this);
    t[0].shape = blocked_shape(t[0].shape, layout.input);
    TensorSpec out = def().output(*this);
    if (epilogue.bias) {
        // Bias is per output channel: the second dimension of NCHW, the last of a matrix.
        int64_t channels = out.shape.size() == 4 ? out.shape[1] : out.shape.back();
        t.push_back({"bias", {channels}, dtype});
    }
    if (epilogue.residual)
        t.push_back({"residual", blocked_shape(out.shape, layout.residual), dtype});
    return t;
}

TensorSpec Workload::output() const {
    TensorSpec out = def().output(*this);
    out.shape = blocked_shape(out.shape, layout.output);
    return out;
}

nlohmann::json Workload::to_json() const {
    nlohmann::json j;
    j["op"] = op;
    j["dtype"] = std::string(kiln::to_string(dtype));
    j["epilogue"] = epilogue.to_string();
    nlohmann::json p = nlohmann::json::object();
    for (const auto& [name, v] : params)
        p[name] = v.size() == 1 ? nlohmann::json(v[0]) : nlohmann::json(v);
    j["params"] = p;
    if (!layout.plain()) j["layout"] = layout.to_string();
    j["key"] = key();
    return j;
}

Workload Workload::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error("workload", "expected a JSON object");
    Workload w;
    if (!j.contains("op") || !j["op"].is_string()) throw Error("op", "missing or not a string");
    w.op = j["op"].get<std::string>();
    if (j.contains("dtype")) {
        if (!j["dtype"].is_string()) throw Error("dtype", "not a string");
        w.dtype = parse_dtype(j["dtype"].get<std::string>());
    }
    if (j.contains("epilogue")) {
        if (!j["epilogue"].is_string()) throw Error("epilogue", "not a string");
        w.epilogue = Epilogue::parse(j["epilogue"].get<std::string>());
    }
    if (j.contains("layout")) {
        if (!j["layout"].is_string()) throw Error("layout", "not a string");
        w.layout = Blocking::parse(j["layout"].get<std::string>());
    }
    if (!j.contains("params") || !j["params"].is_object())
        throw Error("params", "missing or not an object");
    for (const auto& [name, v] : j["params"].items()) {
        if (v.is_number_integer()) {
            w.params[name] = {v.get<int64_t>()};
        } else if (v.is_array()) {
            std::vector<int64_t> vals;
            for (const auto& x : v) {
                if (!x.is_number_integer()) throw Error(name, "expected integers, got " + v.dump());
                vals.push_back(x.get<int64_t>());
            }
            w.params[name] = vals;
        } else {
            throw Error(name, "expected an integer or a list of integers, got " + v.dump());
        }
    }
    // Scalars given for multi-valued parameters expand, as on the command line.
    for (const auto& p : w.def().params()) {
        auto it = w.params.find(p.name);
        if (it != w.params.end() && it->second.size() == 1 && p.arity > 1)
            it->second.assign(p.arity, it->second[0]);
    }
    w.validate();
    return w;
}

}  // namespace kiln
