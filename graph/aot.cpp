// kiln/graph/aot.cpp — a graph to libNAME.a: kernels, lowered nodes, glue, weights (aot.h).
//
// compile_model() walks the nodes in order. Each one becomes a Call: a C function compiled by
// Halide (compile_to_object, with user_context and without a runtime of its own) and the
// buffers the glue passes it, described by where their bytes live (memory_plan.h) and their
// extents in Halide's order. Kernels are first (their pipelines come from the op's schedule
// space, build_pipelines()), then lowerings (halide_ops.h); aliases call nothing. The glue,
// the weights (one blob, included by the assembler) and kiln's runtime are compiled with the
// target's C compiler, and everything is archived together with one Halide runtime.
#include "graph/aot.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "Halide.h"
#include "core/error.h"
#include "db/database.h"
#include "generators/gemm.h"
#include "graph/fused.h"
#include "graph/halide_ops.h"
#include "graph/layout_plan.h"
#include "graph/memory_plan.h"
#include "graph/op.h"
#include "graph/tasks.h"
#include "schedules/halide_kernel.h"
#include "schedules/kernel.h"

namespace kiln::graph {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr uint64_t kAlign = 64;

// One dimension of a buffer the glue passes, Halide's halide_dimension_t.
struct Dim {
    int64_t min = 0, extent = 1, stride = 1;
};

std::vector<Dim> dense_dims(const std::vector<int>& extents) {
    std::vector<Dim> dims;
    int64_t stride = 1;
    for (int e : extents) {
        dims.push_back({0, e, stride});
        stride *= e;
    }
    return dims;
}

std::vector<int> reversed(const std::vector<int64_t>& shape) {
    return std::vector<int>(shape.rbegin(), shape.rend());
}

// A buffer argument: its bytes start at `base` (a C expression of type uint8_t*) plus
// `offset` elements, seen with `dims`.
struct BufferArg {
    std::string base;
    int64_t offset = 0;
    std::vector<Dim> dims;
    Halide::Type type = Halide::Float(32);
};

struct Call {
    std::string function;
    std::string comment;  // the node's label
    std::vector<BufferArg> args;
};

// The constants of the library, one blob, each piece aligned.
struct Blob {
    std::vector<uint8_t> bytes;
    uint64_t add(const void* data, size_t n) {
        bytes.resize((bytes.size() + kAlign - 1) / kAlign * kAlign);
        uint64_t at = bytes.size();
        const auto* p = static_cast<const uint8_t*>(data);
        bytes.insert(bytes.end(), p, p + n);
        return at;
    }
};

std::string c_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20)
            out += fmt::format("\\{:03o}", static_cast<unsigned char>(c));
        else
            out += c;
    }
    return out + "\"";
}

bool is_c_identifier(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

// Runs a shell command; throws with its output when it fails.
void run_tool(const std::string& command) {
    std::string output;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) throw Error("compile", "cannot run `" + command + "`");
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        output.append(buf, n);
    int status = ::pclose(p);
    if (status != 0)
        throw Error("compile", fmt::format("`{}` failed (status {}):\n{}", command, status,
                                           output.substr(0, 4000)));
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Where kiln's C runtime (runtime.c, kiln/runtime.h, kiln/model_def.h) is: $KILN_RUNTIME_DIR
// when set; share/kiln/runtime beside an installed kiln (bin/../share/kiln/runtime, what
// `cmake --install` writes); else the source tree this kiln was built from.
fs::path runtime_dir() {
    if (const char* env = std::getenv("KILN_RUNTIME_DIR"); env && *env) return env;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed = exe.parent_path().parent_path() / "share" / "kiln" / "runtime";
        if (fs::exists(installed / "runtime.c", ec)) return installed;
    }
    return KILN_RUNTIME_DIR;
}

int32_t runtime_dtype(DType t) {
    switch (t) {
        case DType::f32:
            return 0;
        case DType::i64:
            return 1;
        case DType::i32:
            return 2;
        case DType::i8:
            return 3;
        case DType::u8:
            return 4;
        default:
            return -1;
    }
}

Halide::Type halide_type(DType t) {
    switch (t) {
        case DType::f32:
            return Halide::Float(32);
        case DType::i64:
            return Halide::Int(64);
        case DType::i32:
            return Halide::Int(32);
        case DType::i8:
            return Halide::Int(8);
        case DType::u8:
            return Halide::UInt(8);
        default:
            throw Error("compile", std::string("no Halide type for ") + std::string(to_string(t)));
    }
}

// A constant as a Func over a copy of its data (Halide embeds it in the object).
Halide::Func constant_func(const Tensor& t, const std::string& name) {
    std::vector<int> extents = reversed(t.shape);
    Halide::Buffer<> buf(halide_type(t.dtype), extents, name);
    std::memcpy(buf.data(), t.bytes.data(), t.bytes.size());
    Halide::Func f(name + "_f");
    std::vector<Halide::Var> vars(extents.size());
    std::vector<Halide::Expr> args(vars.begin(), vars.end());
    f(vars) = buf(args);
    return f;
}

class Compiler {
  public:
    Compiler(const Graph& g, const CompileOptions& o)
        : g_(g),
          o_(o),
          ht_(Halide::Target(o.target.halide)
                  .with_feature(Halide::Target::UserContext)
                  .with_feature(Halide::Target::NoRuntime)) {}

    CompileReport run();

  private:
    std::string obj(const std::string& stem) const { return (work_ / (stem + ".o")).string(); }
    std::string next_function() { return fmt::format("kiln_{}_f{}", o_.name, functions_++); }
    void say(const std::string& line) const {
        if (o_.progress) o_.progress(line);
    }
    // Where value v's bytes are, as a C expression.
    BufferArg value_arg(ValueId v, const std::vector<int>& extents) const;
    BufferArg constant_arg(const Tensor& t, const std::vector<int>& extents);
    // The database's best config for `w` on the target, if it has one.
    std::optional<std::pair<Config, double>> best_config(const Workload& w) const;
    // The config to plan with: the database's best for `blockable` (w in the layout
    // blockable_activations() gives it, the one `kiln tune` tunes), else for w itself, else
    // the space's default with a warning naming the kernel.
    KernelChoice choose_config(const Node& n, const Workload& w, const Workload& blockable);
    // `w` is the choice's workload with the planned layouts.
    void compile_kernel_node(const Node& n, const Workload& w, const KernelChoice& choice);
    void compile_lowered_node(const Node& n, const HalideLowering& l);
    void write_glue(const std::string& path) const;
    void write_weights(const std::string& bin, const std::string& asm_path) const;
    void write_header_and_json(CompileReport& r) const;

    const Graph& g_;
    const CompileOptions& o_;
    Halide::Target ht_;
    fs::path work_;
    MemoryPlan plan_;
    Blob blob_;
    std::map<const Tensor*, uint64_t> blob_offsets_;  // constants already in the blob
    std::deque<Tensor> packed_;  // packed weights, alive (and at their address) to the end
    std::vector<Call> calls_;
    std::vector<std::string> objects_;
    std::map<std::string, std::string> kernel_functions_;  // workload key + config -> function
    std::vector<CompiledNode> nodes_;
    std::vector<std::string> warnings_;
    int functions_ = 0;
    int step_ = 0, steps_ = 0;
    int activations_ = 0, blocked_ = 0;  // kernel outputs; of them, kept blocked
};

BufferArg Compiler::value_arg(ValueId v, const std::vector<int>& extents) const {
    const Storage& s = plan_.storage.at(v);
    BufferArg a;
    a.dims = dense_dims(extents);
    switch (s.kind) {
        case Storage::Kind::input:
            a.base = fmt::format("(uint8_t*)(uintptr_t)in[{}]", s.index);
            break;
        case Storage::Kind::output:
            a.base = fmt::format("(uint8_t*)out[{}]", s.index);
            break;
        case Storage::Kind::arena:
            a.base = fmt::format("(arena + {})", s.offset);
            break;
        case Storage::Kind::none:
            throw Error("compile",
                        "value '" + g_.value(v).name + "' has no memory (internal error)");
    }
    return a;
}

BufferArg Compiler::constant_arg(const Tensor& t, const std::vector<int>& extents) {
    auto it = blob_offsets_.find(&t);
    uint64_t at = it != blob_offsets_.end()
                      ? it->second
                      : (blob_offsets_[&t] = blob_.add(t.bytes.data(), t.bytes.size()));
    BufferArg a;
    a.base = fmt::format("(uint8_t*)(uintptr_t)(kiln_weights_{} + {})", o_.name, at);
    a.dims = dense_dims(extents);
    a.type = halide_type(t.dtype);
    return a;
}

// The node inputs behind Workload::inputs(): data, weight, then bias and residual as the
// epilogue has them.
std::vector<ValueId> kernel_operands(const Node& n, const Workload& w) {
    std::vector<ValueId> ops = {n.inputs.at(kFusedData), n.inputs.at(kFusedWeight)};
    if (w.epilogue.bias) ops.push_back(n.inputs.at(kFusedBias));
    if (w.epilogue.residual) ops.push_back(n.inputs.at(kFusedResidual));
    return ops;
}

std::optional<std::pair<Config, double>> Compiler::best_config(const Workload& w) const {
    if (!o_.db) return std::nullopt;
    auto best = o_.db->best(w.key(), o_.target.halide, o_.target.fingerprint.id());
    if (!best) return std::nullopt;
    return std::make_pair(best->config, best->median_ms);
}

KernelChoice Compiler::choose_config(const Node& n, const Workload& w, const Workload& blockable) {
    KernelChoice choice{w, {}, false, 0, {}};
    // The faster of the two records: a blockable record not yet tuned as far as the NCHW one
    // is does not replace it (the planner then leaves the edges NCHW if it must).
    for (const Workload* each : {&blockable, &w}) {
        if (choice.records.count(each->key())) continue;
        if (auto best = best_config(*each)) {
            choice.records.emplace(each->key(), *best);
            if (!choice.tuned || best->second < choice.ms) {
                choice.config = best->first;
                choice.ms = best->second;
            }
            choice.tuned = true;
        }
    }
    if (choice.tuned) return choice;
    warnings_.push_back(
        fmt::format("kernel {} ({}) has no tuned record{}; it uses the "
                    "space's default config",
                    n.label(), blockable.key(), o_.db ? " in " + o_.db->path() : ""));
    choice.config = find_space(w.op).space(w, o_.target).default_config;
    return choice;
}

void Compiler::compile_kernel_node(const Node& n, const Workload& w, const KernelChoice& choice) {
    auto start = Clock::now();
    // A kernel takes its own layout's record when it has one no slower than the one it was
    // planned with, else the config it was planned with (which plan_layouts() checked it can
    // take).
    Config config = choice.config;
    bool tuned = choice.tuned;
    if (auto it = choice.records.find(w.key()); it != choice.records.end()) {
        if (it->second.second <= choice.ms) config = it->second.first;
    } else if (!w.layout.plain()) {
        if (auto best = best_config(w); best && (!tuned || best->second <= choice.ms)) {
            config = best->first;
            tuned = true;
        }
    }
    CompiledNode cn{n.label(), tuned ? "tuned" : "default", "", w.key(), config.to_string()};

    HalidePipelines p = build_pipelines(w, config, o_.target);
    constrain_shapes(p, w);
    const auto specs = w.inputs();
    const std::vector<ValueId> operands = kernel_operands(n, w);
    auto extents_of = [&](int input) {
        if (size_t(input) < p.input_views.size() && !p.input_views[input].empty())
            return p.input_views[input];
        return halide_extents(specs.at(input));
    };

    // Packed weights are computed now, on this machine, and stored like any constant.
    const Tensor* packed = nullptr;
    if (p.pack) {
        Halide::ParamMap params;
        for (const HalideBinding& b : p.pack_args) {
            const Value& v = g_.value(operands.at(b.input));
            if (!v.is_constant())
                throw node_error(
                    n, "the kernel packs operand '" + v.name + "', which is not a constant");
            Halide::Buffer<float> buf(const_cast<float*>(v.data->data<float>()),
                                      extents_of(b.input));
            params.set(b.param, buf);
        }
        Halide::Buffer<float> out(p.packed_extents);
        p.pack->realize(out, halide_target(host_target()), params);
        std::vector<int64_t> shape(p.packed_extents.rbegin(), p.packed_extents.rend());
        packed = &packed_.emplace_back(Tensor::zeros(DType::f32, shape));
        std::memcpy(packed_.back().bytes.data(), out.data(), packed_.back().bytes.size());
    }

    const std::string key = w.key() + " " + cn.config;
    auto known = kernel_functions_.find(key);
    Call call;
    call.comment = n.label();
    if (known != kernel_functions_.end()) {
        call.function = known->second;
    } else {
        call.function = next_function();
        std::vector<Halide::Argument> args;
        for (const HalideBinding& b : p.main_args)
            args.push_back(b.param);
        p.main.compile_to_object(obj(call.function), args, call.function, ht_);
        objects_.push_back(obj(call.function));
        kernel_functions_[key] = call.function;
    }
    for (const HalideBinding& b : p.main_args) {
        if (b.input < 0) {
            call.args.push_back(constant_arg(*packed, p.packed_extents));
            continue;
        }
        const Value& v = g_.value(operands.at(b.input));
        call.args.push_back(v.is_constant() ? constant_arg(*v.data, extents_of(b.input))
                                            : value_arg(operands.at(b.input), extents_of(b.input)));
    }
    const std::vector<int> out_extents =
        p.output_view.empty() ? halide_extents(w.output()) : p.output_view;
    const BufferArg whole = value_arg(n.outputs.at(0), out_extents);
    if (p.output_crops.empty()) {
        call.args.push_back(whole);
    } else {
        for (const auto& crop : p.output_crops) {
            BufferArg piece = whole;
            for (size_t d = 0; d < crop.size() && d < piece.dims.size(); ++d) {
                piece.dims[d].min = crop[d].first;
                piece.dims[d].extent = crop[d].second;
                piece.offset += crop[d].first * piece.dims[d].stride;
            }
            call.args.push_back(piece);
        }
    }
    cn.function = call.function;
    calls_.push_back(std::move(call));
    say(fmt::format("[{}/{}] {} {}: {}, {:.1f} s", ++step_, steps_, n.label(), w.key(), cn.kind,
                    std::chrono::duration<double>(Clock::now() - start).count()));
    nodes_.push_back(std::move(cn));
}

void Compiler::compile_lowered_node(const Node& n, const HalideLowering& l) {
    auto start = Clock::now();
    std::vector<HalideTensor> ins;
    std::vector<Halide::Argument> args;
    Call call;
    call.comment = n.label();
    for (size_t k = 0; k < n.inputs.size(); ++k) {
        HalideTensor t;
        if (n.inputs[k] == kNoId) {
            ins.push_back(t);
            continue;
        }
        const Value& v = g_.value(n.inputs[k]);
        t.shape = v.shape;
        t.dtype = v.dtype;
        if (v.is_constant()) {
            t.constant = v.data.get();
            t.f = constant_func(*v.data, fmt::format("c{}", k));
        } else {
            if (v.dtype != DType::f32)
                throw node_error(n, "input '" + v.name + "' is " + std::string(to_string(v.dtype)) +
                                        "; compiled models compute in float32 only");
            Halide::ImageParam p(Halide::Float(32), static_cast<int>(v.shape.size()),
                                 fmt::format("in{}", k));
            set_dense_shape(p, reversed(v.shape));
            t.f = p;
            args.push_back(p);
            call.args.push_back(value_arg(n.inputs[k], reversed(v.shape)));
        }
        ins.push_back(t);
    }
    std::vector<Halide::Func> outs = l.define(n, g_, ins);
    if (outs.size() != n.outputs.size())
        throw node_error(n, fmt::format("its lowering defines {} outputs, the node has {}",
                                        outs.size(), n.outputs.size()));
    for (size_t j = 0; j < outs.size(); ++j) {
        const Value& v = g_.value(n.outputs[j]);
        if (v.dtype != DType::f32)
            throw node_error(n, "output '" + v.name + "' is " + std::string(to_string(v.dtype)) +
                                    "; compiled models compute in float32 only");
        schedule_generic(outs[j], v.shape, o_.target);
        set_dense_shape(outs[j].output_buffer(), reversed(v.shape));
        call.args.push_back(value_arg(n.outputs[j], reversed(v.shape)));
    }
    call.function = next_function();
    Halide::Pipeline(outs).compile_to_object(obj(call.function), args, call.function, ht_);
    objects_.push_back(obj(call.function));
    nodes_.push_back({n.label(), "lowered", call.function, "", ""});
    calls_.push_back(std::move(call));
    say(fmt::format("[{}/{}] {}: lowered, {:.1f} s", ++step_, steps_, n.label(),
                    std::chrono::duration<double>(Clock::now() - start).count()));
}

std::string dims_initializer(const std::vector<Dim>& dims) {
    std::string s;
    for (const Dim& d : dims)
        s += fmt::format("{}{{{}, {}, {}, 0}}", s.empty() ? "" : ", ", d.min, d.extent, d.stride);
    return s.empty() ? "{0, 1, 1, 0}" : s;  // a zero-dimensional buffer's array is not read
}

std::string tensor_defs(const Graph& g, const std::vector<ValueId>& ids) {
    std::string s;
    for (ValueId id : ids) {
        const Value& v = g.value(id);
        std::string shape;
        for (int64_t d : v.shape)
            shape += fmt::format("{}{}", shape.empty() ? "" : ", ", d);
        s += fmt::format("    {{{}, {}, {}, {{{}}}}},\n", c_string(v.name), runtime_dtype(v.dtype),
                         v.shape.size(), shape.empty() ? "0" : shape);
    }
    return s;
}

void Compiler::write_glue(const std::string& path) const {
    std::ostringstream c;
    c << "/* Generated by kiln compile: the glue of model " << o_.name << ". */\n"
      << "#include <stdint.h>\n#include <string.h>\n\n#include \"HalideRuntime.h\"\n"
      << "#include \"kiln/model_def.h\"\n\n"
      << fmt::format("extern const uint8_t kiln_weights_{}[];\n", o_.name);
    std::vector<std::string> declared;
    for (const Call& call : calls_) {
        if (std::find(declared.begin(), declared.end(), call.function) != declared.end()) continue;
        declared.push_back(call.function);
        std::string params = "void*";
        for (size_t i = 0; i < call.args.size(); ++i)
            params += ", struct halide_buffer_t*";
        c << fmt::format("int {}({});\n", call.function, params);
    }
    c << "\nstatic halide_buffer_t kiln_buffer(uint8_t* host, halide_type_code_t code, int bits,\n"
         "                                   int dimensions, halide_dimension_t* dim) {\n"
         "    halide_buffer_t b;\n    memset(&b, 0, sizeof b);\n    b.host = host;\n"
         "    b.type.code = (uint8_t)code;\n    b.type.bits = (uint8_t)bits;\n"
         "    b.type.lanes = 1;\n    b.dimensions = dimensions;\n    b.dim = dim;\n"
         "    return b;\n}\n\n";
    // The dimension arrays are static: kernels read them and never write them, so instances
    // running at the same time share them.
    int d = 0;
    std::ostringstream body;
    for (const Call& call : calls_) {
        body << "    { /* " << call.comment << " */\n";
        std::string argv = "ctx";
        for (size_t i = 0; i < call.args.size(); ++i) {
            const BufferArg& a = call.args[i];
            c << fmt::format("static halide_dimension_t kiln_dims{}[] = {{{}}};\n", d,
                             dims_initializer(a.dims));
            const char* code = a.type.is_float()  ? "halide_type_float"
                               : a.type.is_uint() ? "halide_type_uint"
                                                  : "halide_type_int";
            body << fmt::format(
                "        halide_buffer_t b{} = kiln_buffer({} + {}, {}, {}, {}, kiln_dims{});\n", i,
                a.base, a.offset * a.type.bytes(), code, a.type.bits(), a.dims.size(), d);
            argv += fmt::format(", &b{}", i);
            ++d;
        }
        body << fmt::format("        int rc = {}({});\n        if (rc != 0) return rc;\n    }}\n",
                            call.function, argv);
    }
    for (const OutputCopy& copy : plan_.copies) {
        const ValueId v = copy.value;
        body << fmt::format("    memcpy(out[{}], {}, {});\n", copy.output,
                            value_arg(v, reversed(g_.value(v).shape)).base, plan_.storage[v].bytes);
    }
    c << "\nstatic int kiln_run_model(void* ctx, uint8_t* arena, const void* const* in,\n"
         "                          void* const* out) {\n"
         "    (void)arena;\n    (void)in;\n"
      << body.str() << "    return 0;\n}\n\n";
    c << "static const kiln_tensor_def kiln_inputs[] = {\n"
      << tensor_defs(g_, g_.inputs) << "};\n"
      << "static const kiln_tensor_def kiln_outputs[] = {\n"
      << tensor_defs(g_, g_.outputs) << "};\n\n"
      << fmt::format(
             "static const kiln_model_def kiln_model = {{\n"
             "    KILN_MODEL_ABI, {}, {}, {}, {}, kiln_inputs, kiln_outputs, {}u,\n"
             "    kiln_run_model}};\n\n",
             c_string(o_.name), c_string(o_.target.halide), g_.inputs.size(), g_.outputs.size(),
             plan_.arena_bytes)
      << fmt::format("const kiln_model_def* kiln_model_{}(void) {{ return &kiln_model; }}\n",
                     o_.name);
    std::ofstream(path) << c.str();
}

void Compiler::write_weights(const std::string& bin, const std::string& asm_path) const {
    std::ofstream(bin, std::ios::binary)
        .write(reinterpret_cast<const char*>(blob_.bytes.data()),
               static_cast<std::streamsize>(blob_.bytes.size()));
    // '@' starts a comment on arm64, '%' is what both accept for section types.
    std::ofstream(asm_path) << fmt::format(
        "    .section .rodata\n    .balign {}\n    .globl kiln_weights_{}\n"
        "    .hidden kiln_weights_{}\nkiln_weights_{}:\n    .incbin \"{}\"\n    .byte 0\n"
        "    .section .note.GNU-stack,\"\",%progbits\n",
        kAlign, o_.name, o_.name, o_.name, fs::absolute(bin).string());
}

void Compiler::write_header_and_json(CompileReport& r) const {
    const fs::path out(o_.out_dir);
    fs::create_directories(out / "kiln");
    fs::copy_file(runtime_dir() / "kiln" / "runtime.h", out / "kiln" / "runtime.h",
                  fs::copy_options::overwrite_existing);
    r.header = (out / (o_.name + ".h")).string();
    std::string guard = "KILN_MODEL_" + o_.name + "_H";
    std::transform(guard.begin(), guard.end(), guard.begin(), ::toupper);
    std::ofstream(r.header) << fmt::format(
        "/* Generated by kiln compile: model {0} for {1}.\n"
        " * Link lib{0}.a with -lpthread -ldl -lm; the API is kiln/runtime.h, the model's\n"
        " * inputs and outputs are in {0}.json. */\n"
        "#ifndef {2}\n#define {2}\n\n#include \"kiln/runtime.h\"\n\n"
        "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
        "/* The model, for kiln_create(). */\nconst kiln_model_def* kiln_model_{0}(void);\n\n"
        "#ifdef __cplusplus\n}}\n#endif\n\n#endif\n",
        o_.name, o_.target.halide, guard);

    auto tensors = [&](const std::vector<ValueId>& ids) {
        json a = json::array();
        for (ValueId id : ids) {
            const Value& v = g_.value(id);
            a.push_back({{"name", v.name}, {"dtype", to_string(v.dtype)}, {"shape", v.shape}});
        }
        return a;
    };
    json kernels = json::array();
    for (const CompiledNode& n : r.nodes) {
        json k = {{"node", n.node}, {"kind", n.kind}};
        if (!n.function.empty()) k["function"] = n.function;
        if (!n.workload.empty()) k["workload"] = n.workload;
        if (!n.config.empty()) k["config"] = json::parse(n.config);
        kernels.push_back(k);
    }
    json j = {{"format", 1},
              {"name", o_.name},
              {"target", {{"name", o_.target.name}, {"halide", o_.target.halide}}},
              {"inputs", tensors(g_.inputs)},
              {"outputs", tensors(g_.outputs)},
              {"kernels", kernels},
              {"functions", r.functions},
              {"arena_bytes", r.arena_bytes},
              {"layout",
               {{"kernel_activations", r.kernel_activations},
                {"blocked_activations", r.blocked_activations}}},
              {"weight_bytes", r.weight_bytes},
              {"warnings", r.warnings},
              {"link", "-L. -l" + o_.name + " -lpthread -ldl -lm"}};
    r.json = (out / (o_.name + ".json")).string();
    std::ofstream(r.json) << j.dump(2) << "\n";
}

CompileReport Compiler::run() {
    auto start = Clock::now();
    if (!is_c_identifier(o_.name))
        throw Error("name", "'" + o_.name + "' is not a C identifier (letters, digits, _)");
    for (ValueId id : g_.inputs)
        if (g_.value(id).dtype != DType::f32 || g_.value(id).shape.size() > 8)
            throw Error("compile", "input '" + g_.value(id).name +
                                       "' is not a float32 tensor of rank 8 or less");
    for (ValueId id : g_.outputs)
        if (g_.value(id).dtype != DType::f32 || g_.value(id).shape.size() > 8)
            throw Error("compile", "output '" + g_.value(id).name +
                                       "' is not a float32 tensor of rank 8 or less");
    const std::string cc = o_.cc.empty() ? default_c_compiler(o_.target) : o_.cc;
    run_tool(shell_quote(cc) + " --version");  // a missing compiler says so before the work

    // What each node becomes; what nothing lowers is one message.
    std::vector<std::optional<Workload>> workloads(g_.nodes.size());
    std::vector<const HalideLowering*> lowerings(g_.nodes.size(), nullptr);
    std::map<std::string, std::vector<std::string>> missing;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
        const Node& n = g_.nodes[i];
        std::string why;
        if (is_fused_kernel(n)) workloads[i] = kernel_workload(g_, n, why);
        if (!workloads[i]) lowerings[i] = find_halide_lowering(n.op);
        if (!workloads[i] && !lowerings[i]) missing[n.op].push_back(n.label());
        if (workloads[i] || (lowerings[i] && !lowerings[i]->is_alias())) ++steps_;
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& [op, labels] : missing)
            list += fmt::format("\n  {} ({} nodes: {})", op, labels.size(), labels.front());
        throw Error("compile", "no kernel and no Halide lowering for:" + list);
    }
    plan_ = plan_memory(g_, [&](const Node& n) {
        const HalideLowering* l = find_halide_lowering(n.op);
        return !is_fused_kernel(n) && l && l->is_alias();
    });

    fs::create_directories(o_.out_dir);
    work_ = fs::path(o_.out_dir) / ("." + o_.name + ".objects");
    fs::remove_all(work_);
    fs::create_directories(work_);

    // Each kernel's config, then which activations stay blocked between kernels.
    const std::vector<int64_t> blockable =
        blockable_activations(g_, workloads, o_.block_activations ? o_.target.f32_lanes() : 0);
    std::vector<std::optional<KernelChoice>> choices(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i)
        if (workloads[i])
            choices[i] = choose_config(g_.nodes[i], *workloads[i],
                                       with_layouts(g_.nodes[i], *workloads[i], blockable));
    const LayoutPlan layouts = plan_layouts(g_, choices, o_.target, o_.block_activations);
    activations_ = layouts.activations;
    blocked_ = layouts.blocked;

    for (size_t i = 0; i < g_.nodes.size(); ++i) {
        const Node& n = g_.nodes[i];
        if (workloads[i])
            compile_kernel_node(n, *layouts.workloads[i], *choices[i]);
        else if (lowerings[i]->is_alias())
            nodes_.push_back({n.label(), "alias", "", "", ""});
        else
            compile_lowered_node(n, *lowerings[i]);
    }

    // The C parts, the weights, one Halide runtime, kiln's runtime: one archive.
    const std::string glue = (work_ / (o_.name + "_glue.c")).string();
    write_glue(glue);
    write_weights((work_ / "weights.bin").string(), (work_ / "weights.S").string());
    const fs::path runtime = runtime_dir();
    const std::string flags =
        fmt::format("-std=c99 -O2 -fPIC -I{} -I{}", shell_quote(runtime.string()),
                    shell_quote(KILN_HALIDE_INCLUDE_DIR));
    run_tool(fmt::format("{} {} -c {} -o {}", shell_quote(cc), flags, shell_quote(glue),
                         shell_quote(obj("glue"))));
    run_tool(fmt::format("{} -c {} -o {}", shell_quote(cc),
                         shell_quote((work_ / "weights.S").string()), shell_quote(obj("weights"))));
    run_tool(fmt::format("{} {} -c {} -o {}", shell_quote(cc), flags,
                         shell_quote((runtime / "runtime.c").string()),
                         shell_quote(obj("runtime"))));
    Halide::compile_standalone_runtime(obj("halide_runtime"),
                                       ht_.without_feature(Halide::Target::NoRuntime));
    objects_.insert(objects_.end(),
                    {obj("glue"), obj("weights"), obj("runtime"), obj("halide_runtime")});

    CompileReport r;
    r.library = (fs::path(o_.out_dir) / ("lib" + o_.name + ".a")).string();
    fs::remove(r.library);
    std::string archive = shell_quote(o_.ar) + " rcs " + shell_quote(r.library);
    for (const std::string& o : objects_)
        archive += " " + shell_quote(o);
    run_tool(archive);

    r.nodes = nodes_;
    r.warnings = warnings_;
    r.functions = functions_;
    r.kernel_activations = activations_;
    r.blocked_activations = blocked_;
    r.arena_bytes = plan_.arena_bytes;
    r.unshared_bytes = plan_.unshared_bytes;
    r.weight_bytes = blob_.bytes.size();
    write_header_and_json(r);
    r.library_bytes = fs::file_size(r.library);
    fs::remove_all(work_);
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
}

}  // namespace

std::string default_c_compiler(const Target& t) {
    if (t.is_host) return "cc";
    if (t.halide.rfind("arm-64-linux", 0) == 0) return "aarch64-linux-gnu-gcc";
    if (t.halide.rfind("x86-64-linux", 0) == 0) return "cc";
    throw Error("target",
                "no default C compiler for '" + t.name + "'; give one (kiln compile --cc)");
}

CompileReport compile_model(const Graph& g, const CompileOptions& o) {
    try {
        return Compiler(g, o).run();
    } catch (const Halide::Error& e) {
        throw Error("compile", std::string("Halide: ") + e.what());
    }
}

}  // namespace kiln::graph
