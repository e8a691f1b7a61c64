// kiln/graph/halide_ops.cpp — the Halide lowering registry, the generic schedule, the JIT check
// of a lowering against its op (evaluate_halide), and the helpers the lowering files share
// (graph/halide_op_helpers.h).
//
// The lowerings themselves live by family in graph/halide_op_*.cpp, like the ops' references
// in graph/op_*.cpp. Start with evaluate_halide(): it shows the whole life of a lowered node.
#include "graph/halide_ops.h"

#include <algorithm>
#include <map>

#include "graph/halide_op_helpers.h"
#include "graph/op.h"

namespace kiln::graph {
namespace {

std::map<std::string, std::unique_ptr<HalideLowering>>& registry() {
    static std::map<std::string, std::unique_ptr<HalideLowering>> lowerings;
    return lowerings;
}

// Below this many output elements a node runs on one thread: a parallel task costs a few
// microseconds to hand out, more than a small elementwise node takes.
constexpr int64_t kParallelMinElements = 16384;

}  // namespace

HalideLoweringRegistration::HalideLoweringRegistration(std::unique_ptr<HalideLowering> lowering) {
    std::string type = lowering->type();
    registry()[type] = std::move(lowering);
}

const HalideLowering* find_halide_lowering(const std::string& type) {
    auto it = registry().find(type);
    return it == registry().end() ? nullptr : it->second.get();
}

std::vector<const HalideLowering*> all_halide_lowerings() {
    std::vector<const HalideLowering*> out;
    for (const auto& [type, lowering] : registry())
        out.push_back(lowering.get());
    return out;
}

void schedule_generic(Halide::Func out, const std::vector<int64_t>& shape, const Target& t) {
    out.compute_root();
    const size_t rank = shape.size();
    if (rank == 0) return;
    std::vector<Halide::Var> v = out.args();  // Halide order: v[0] is shape.back()
    if (rank >= 2 && numel(shape) >= kParallelMinElements) {
        Halide::Var fused = v[1];
        for (size_t d = 2; d < rank; ++d) {
            Halide::Var next(out.name() + "_fused" + std::to_string(d));
            out.fuse(fused, v[d], next);
            fused = next;
        }
        if (numel(shape) / shape.back() >= 2) out.parallel(fused);
    }
    const int lanes = Halide::Target(t.halide).natural_vector_size<float>();
    // ShiftInwards recomputes a few elements of the last vector instead of guarding it: legal
    // for the pure definition of an output at least one vector wide, whatever its extent.
    if (lanes > 1 && shape.back() >= lanes)
        out.vectorize(v[0], lanes, Halide::TailStrategy::ShiftInwards);
}

void evaluate_halide(const Node& n, const Graph& g, const std::vector<const Tensor*>& in,
                     std::vector<Tensor>& out) {
    const HalideLowering* lowering = find_halide_lowering(n.op);
    if (!lowering) throw node_error(n, "no Halide lowering for " + n.op);
    const std::vector<ValueType> types = output_types(n, g);

    // Inputs: f32 data as Buffers over the tensors' memory, Halide's dimensions reversed. An
    // empty tensor gets a one-element stand-in: a lowering never reads it, but Halide wants a
    // buffer with memory behind it.
    std::vector<HalideTensor> tensors(n.inputs.size());
    std::vector<Halide::Buffer<float>> buffers;
    buffers.reserve(n.inputs.size());
    for (size_t i = 0; i < n.inputs.size(); ++i) {
        const Tensor* t = i < in.size() ? in[i] : nullptr;
        if (!t) continue;
        HalideTensor& h = tensors[i];
        h.shape = t->shape;
        h.dtype = t->dtype;
        if (n.inputs[i] != kNoId && g.value(n.inputs[i]).is_constant()) h.constant = t;
        if (t->dtype != DType::f32) continue;
        std::vector<int> sizes(t->shape.rbegin(), t->shape.rend());
        if (t->numel() == 0) {
            std::fill(sizes.begin(), sizes.end(), 1);
            buffers.emplace_back(sizes);
        } else {
            buffers.emplace_back(const_cast<float*>(t->data<float>()), sizes);
        }
        h.f = Halide::Func(Halide::Internal::unique_name("in" + std::to_string(i)));
        std::vector<Halide::Var> args(sizes.size());
        h.f(args) = buffers.back()(std::vector<Halide::Expr>(args.begin(), args.end()));
    }

    out.clear();
    for (const ValueType& type : types) {
        if (type.dtype != DType::f32)
            throw Declined("node " + n.label() + ": output of dtype " +
                           std::string(to_string(type.dtype)) +
                           "; only f32 tensors are computed by Halide");
        out.push_back(Tensor::zeros(type.dtype, type.shape));
    }

    try {
        std::vector<Halide::Func> funcs = lowering->define(n, g, tensors);
        if (funcs.size() != types.size())
            throw node_error(n, "the lowering defined " + std::to_string(funcs.size()) +
                                    " outputs, the op has " + std::to_string(types.size()));
        static const Target host = host_target();
        std::vector<Halide::Func> computed;
        std::vector<Halide::Buffer<void>> results;
        for (size_t k = 0; k < funcs.size(); ++k) {
            const Halide::Func& f = funcs[k];
            const int rank = static_cast<int>(types[k].shape.size());
            if (!f.defined() || f.dimensions() != rank || f.outputs() != 1 ||
                f.output_types()[0] != Halide::Float(32))
                throw node_error(n, "the lowering's output " + std::to_string(k) +
                                        " is not a float32 Func of " + std::to_string(rank) +
                                        " dimensions");
            if (out[k].numel() == 0) continue;
            schedule_generic(f, types[k].shape, host);
            computed.push_back(f);
            std::vector<int> sizes(types[k].shape.rbegin(), types[k].shape.rend());
            results.emplace_back(Halide::Buffer<float>(out[k].data<float>(), sizes));
        }
        if (computed.empty()) return;
        Halide::Pipeline p(computed);
        Halide::Realization r(results);
        p.realize(r, Halide::get_jit_target_from_environment());
    } catch (const Halide::Error& e) {
        throw node_error(n, std::string("Halide: ") + e.what());
    }
}

// ---- Helpers for the lowering files (graph/halide_op_helpers.h) ------------------------------

Halide::Func make_func(const std::string& name, size_t rank,
                       const std::function<Halide::Expr(const Coords&)>& body) {
    Halide::Func f(Halide::Internal::unique_name(name));
    std::vector<Halide::Var> args;
    for (size_t d = 0; d < rank; ++d)
        args.emplace_back("d" + std::to_string(d));  // d0 innermost, as Halide orders them
    Coords c(args.rbegin(), args.rend());
    f(args) = body(c);
    return f;
}

Halide::Expr at(const HalideTensor& t, const Coords& c) {
    return t.f(Coords(c.rbegin(), c.rend()));
}

Halide::Expr broadcast_at(const HalideTensor& t, const Coords& c) {
    const size_t lead = c.size() - t.shape.size();
    Coords own;
    for (size_t d = 0; d < t.shape.size(); ++d)
        own.push_back(t.shape[d] == 1 ? Halide::Expr(0) : c[lead + d]);
    return at(t, own);
}

Halide::Func padded_spatial(const HalideTensor& x, float value) {
    Halide::Region bounds;  // Halide order: spatial dims first, then C and N unbounded
    for (size_t d = x.shape.size(); d-- > 2;)
        bounds.push_back({0, i32(x.shape[d])});
    bounds.push_back({Halide::Expr(), Halide::Expr()});
    bounds.push_back({Halide::Expr(), Halide::Expr()});
    Halide::Func padded = Halide::BoundaryConditions::constant_exterior(x.f, value, bounds);
    padded.compute_root();
    // Eight lanes: one AVX2 vector, two of SSE or NEON; this copy is not worth a target query.
    std::vector<Halide::Var> v = padded.args();
    if (x.shape.back() >= 8) padded.vectorize(v[0], 8);
    if (numel(x.shape) >= kParallelMinElements) padded.parallel(v[v.size() - 2]);  // channels
    return padded;
}

const HalideTensor& data_input(const Node& n, const std::vector<HalideTensor>& in, size_t i,
                               const char* what) {
    if (i >= in.size() || !in[i].f.defined())
        throw node_error(
            n, "input " + std::to_string(i) + " (" + what + ") is missing or is not f32 data");
    return in[i];
}

const HalideTensor* optional_data_input(const std::vector<HalideTensor>& in, size_t i) {
    return i < in.size() && in[i].f.defined() ? &in[i] : nullptr;
}

std::vector<int64_t> constant_ints(const Node& n, const std::vector<HalideTensor>& in, size_t i,
                                   const char* what) {
    if (i >= in.size() || !in[i].constant)
        throw Declined("node " + n.label() + ": input " + std::to_string(i) + " (" + what +
                       ") is computed at run time; the Halide lowering needs it constant");
    return in[i].constant->to_i64();
}

std::vector<ValueType> output_types(const Node& n, const Graph& g) {
    const GraphOp* op = find_graph_op(n.op);
    if (!op) throw node_error(n, "no registered op " + n.op);
    return op->infer(n, g);
}

Halide::Expr i32(int64_t v) {
    return Halide::Expr(static_cast<int32_t>(v));
}

}  // namespace kiln::graph
