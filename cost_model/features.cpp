// kiln/cost_model/features.cpp — the loop nest of a lowered kernel, and features from it.
//
// summarize_loop_nest(): build the config's pipelines (schedules/halide_kernel.h), turn every
// unrolled loop serial (remembering its name), lower with Halide up to the last pass before
// parallel loops become closures, and walk the statement: NestWalker finds the hot store and
// the per-run totals, then Footprint measures the working set of each loop around it.
// featurize() is at the bottom.
#include "cost_model/features.h"
#include "cost_model/loop_nest.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "Halide.h"
#include "core/error.h"
#include "schedules/halide_kernel.h"

namespace kiln {

namespace {

using namespace Halide;
using namespace Halide::Internal;

// Makes every unrolled loop serial and returns the loop names it had ("f.s1.x.xi"): the loop
// nest is the same, lowering is up to 10x faster (an unrolled register tile is copied
// tile-size times and simplified), and the names let the walker mark those loops unrolled.
std::set<std::string> strip_unrolling(const Pipeline& p) {
    std::vector<Function> outputs;
    for (const Func& f : p.outputs())
        outputs.push_back(f.function());
    std::set<std::string> names;
    for (auto& [name, fn] : build_environment(outputs)) {
        Function f = fn;
        auto strip = [&](StageSchedule s, size_t stage) {
            for (Dim& d : s.dims()) {
                if (d.for_type != ForType::Unrolled) continue;
                names.insert(f.name() + ".s" + std::to_string(stage) + "." + d.var);
                d.for_type = ForType::Serial;
            }
        };
        strip(f.definition().schedule(), 0);
        for (size_t i = 0; i < f.updates().size(); ++i)
            strip(f.updates()[i].schedule(), i + 1);
    }
    return names;
}

// An upper bound of a loop extent or an allocation size; 1 when there is none.
int64_t upper_bound(const Expr& e, const Scope<Interval>& scope) {
    Expr s = simplify(e);
    if (const int64_t* v = as_const_int(s)) return std::max<int64_t>(*v, 0);
    Expr b = find_constant_bound(s, Direction::Upper, scope);
    if (b.defined())
        if (const int64_t* v = as_const_int(b)) return std::max<int64_t>(*v, 0);
    return 1;
}

// Float arithmetic and loads of one evaluation of an expression.
struct ExprCost : IRVisitor {
    double flops = 0, load_bytes = 0;
    using IRVisitor::visit;
    void arith(const Type& t) {
        if (t.is_float()) flops += t.lanes();
    }
    void visit(const Add* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Sub* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Mul* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Div* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Min* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Max* op) override { arith(op->type), IRVisitor::visit(op); }
    void visit(const Load* op) override {
        load_bytes += double(op->type.bytes()) * op->type.lanes();
        IRVisitor::visit(op);
    }
};

struct HotLoop {
    LoopInfo info;
    const For* node = nullptr;
};

// One pass over the lowered statement: per-run totals, allocations, and the hot store (the one
// with the most float arithmetic over the run; the most bytes stored when none computes).
class NestWalker : public IRVisitor {
  public:
    explicit NestWalker(const std::set<std::string>& unrolled) : unrolled_(unrolled) {}

    LoopNestSummary summary;
    std::vector<HotLoop> hot;

    using IRVisitor::visit;

    void visit(const For* op) override {
        const int64_t extent = upper_bound(op->extent, scope_);
        Interval min = find_constant_bounds(op->min, scope_);
        Expr hi =
            min.has_upper_bound() ? simplify(min.max + Expr(int(extent)) - 1) : Interval::pos_inf();
        scope_.push(op->name, Interval(min.has_lower_bound() ? min.min : Interval::neg_inf(), hi));
        LoopKind kind = op->for_type == ForType::Parallel ? LoopKind::parallel
                        : unrolled_.count(op->name)       ? LoopKind::unrolled
                                                          : LoopKind::serial;
        HotLoop l;
        l.info.name = op->name;
        l.info.extent = extent;
        l.info.kind = kind;
        l.node = op;
        stack_.push_back(l);
        const double outer = trips_;
        trips_ *= double(extent);
        op->body.accept(this);
        trips_ = outer;
        stack_.pop_back();
        scope_.pop(op->name);
    }

    void visit(const LetStmt* op) override {
        cost_of(op->value);
        scope_.push(op->name, find_constant_bounds(op->value, scope_));
        op->body.accept(this);
        scope_.pop(op->name);
    }

    void visit(const Store* op) override {
        ExprCost c;
        op->value.accept(&c);
        op->index.accept(&c);
        const double stored = double(op->value.type().bytes()) * op->value.type().lanes();
        summary.flops += c.flops * trips_;
        summary.load_bytes += c.load_bytes * trips_;
        summary.store_bytes += stored * trips_;
        ++summary.statements;
        const std::pair<double, double> score = {c.flops * trips_, stored * trips_};
        if (score > hot_score_) {
            hot_score_ = score;
            hot = stack_;
            summary.hot_lanes = op->value.type().lanes();
            summary.hot_trips = trips_;
            summary.inner_flops = c.flops;
            summary.inner_load_bytes = c.load_bytes;
            summary.inner_store_bytes = stored;
        }
    }

    void visit(const Allocate* op) override {
        double elems = 1;
        for (const Expr& e : op->extents)
            elems *= double(upper_bound(e, scope_));
        summary.allocations += trips_;
        summary.allocation_bytes += elems * op->type.bytes() * trips_;
        IRVisitor::visit(op);
    }

    // Conditions and other expressions outside stores still cost their arithmetic and loads.
    void visit(const IfThenElse* op) override {
        cost_of(op->condition);
        op->then_case.accept(this);
        if (op->else_case.defined()) op->else_case.accept(this);
    }

  private:
    void cost_of(const Expr& e) {
        ExprCost c;
        e.accept(&c);
        summary.flops += c.flops * trips_;
        summary.load_bytes += c.load_bytes * trips_;
    }

    const std::set<std::string>& unrolled_;
    Scope<Interval> scope_;
    std::vector<HotLoop> stack_;
    double trips_ = 1;
    std::pair<double, double> hot_score_ = {-1, -1};
};

// The loops (among those inside one iteration of a given loop) an expression's value varies
// with, seeing through the lets defined inside.
class Footprint : public IRVisitor {
  public:
    // Bytes one iteration of `body` touches: per buffer, the product of the extents of the inner
    // loops its indices vary with, times the widest access; capped by the buffer's allocation
    // when it is allocated inside.
    double bytes(const Stmt& body) {
        body.accept(this);
        double total = 0;
        for (const auto& [buffer, use] : buffers_) {
            double b = use.bytes;
            for (const std::string& loop : use.loops)
                b *= double(extents_.at(loop));
            auto cap = allocated_.find(buffer);
            if (cap != allocated_.end()) b = std::min(b, cap->second);
            total += b;
        }
        return total;
    }

    using IRVisitor::visit;

    void visit(const For* op) override {
        extents_[op->name] = upper_bound(op->extent, scope_);
        scope_.push(op->name, Interval());
        op->body.accept(this);
        scope_.pop(op->name);
    }
    void visit(const LetStmt* op) override {
        op->value.accept(this);
        lets_[op->name] = loops_of(op->value);
        op->body.accept(this);
    }
    void visit(const Let* op) override {
        op->value.accept(this);
        lets_[op->name] = loops_of(op->value);
        op->body.accept(this);
    }
    void visit(const Allocate* op) override {
        double elems = op->type.bytes();
        for (const Expr& e : op->extents)
            elems *= double(upper_bound(e, scope_));
        allocated_[op->name] = elems;
        IRVisitor::visit(op);
    }
    void visit(const Load* op) override {
        use(op->name, op->index, op->type);
        IRVisitor::visit(op);
    }
    void visit(const Store* op) override {
        use(op->name, op->index, op->value.type());
        IRVisitor::visit(op);
    }

  private:
    struct Use {
        std::set<std::string> loops;
        double bytes = 0;
    };

    std::set<std::string> loops_of(const Expr& e) {
        std::set<std::string> out;
        visit_with(e, [&](const std::string& name) {
            if (extents_.count(name)) out.insert(name);
            auto let = lets_.find(name);
            if (let != lets_.end()) out.insert(let->second.begin(), let->second.end());
        });
        return out;
    }

    template <typename F>
    static void visit_with(const Expr& e, F&& f) {
        struct Vars : IRVisitor {
            F& f;
            explicit Vars(F& f) : f(f) {}
            using IRVisitor::visit;
            void visit(const Variable* op) override { f(op->name); }
        } v(f);
        e.accept(&v);
    }

    void use(const std::string& buffer, const Expr& index, const Type& t) {
        Use& u = buffers_[buffer];
        std::set<std::string> l = loops_of(index);
        u.loops.insert(l.begin(), l.end());
        u.bytes = std::max(u.bytes, double(t.bytes()) * t.lanes());
    }

    Scope<Interval> scope_;
    std::map<std::string, int64_t> extents_;
    std::map<std::string, std::set<std::string>> lets_;
    std::map<std::string, Use> buffers_;
    std::map<std::string, double> allocated_;
};

// Captures the statement a custom lowering pass sees: the last one before parallel loops
// become closures, so For nodes still carry their kind.
struct Capture : IRMutator {
    Stmt stmt;
    using IRMutator::mutate;
    Stmt mutate(const Stmt& s) override {
        stmt = s;
        return s;
    }
};

double log2p(double v) {
    return std::log2(1.0 + std::max(0.0, v));
}

}  // namespace

LoopNestSummary summarize_pipeline(Pipeline p, const Halide::Target& target) {
    const auto start = std::chrono::steady_clock::now();
    const std::set<std::string> unrolled = strip_unrolling(p);
    std::vector<Function> outputs;
    for (const Func& f : p.outputs())
        outputs.push_back(f.function());
    Capture capture;
    lower(outputs, "kiln_features", target, p.infer_arguments(), LinkageType::Internal, {}, false,
          {&capture});
    if (!capture.stmt.defined()) throw Error("cost_model", "lowering produced no statement");

    NestWalker walker(unrolled);
    capture.stmt.accept(&walker);
    LoopNestSummary s = walker.summary;
    for (const HotLoop& h : walker.hot) {
        LoopInfo info = h.info;
        Footprint fp;
        info.working_set = fp.bytes(h.node->body);
        if (info.kind == LoopKind::parallel) s.parallel_tasks *= std::max<int64_t>(1, info.extent);
        s.hot_loops.push_back(info);
    }
    s.lower_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return s;
}

LoopNestSummary summarize_loop_nest(const Workload& w, const Config& c, const Target& t) {
    const auto start = std::chrono::steady_clock::now();
    HalidePipelines p = build_pipelines(w, c, t);
    constrain_shapes(p, w);
    LoopNestSummary s = summarize_pipeline(p.main, halide_target(t));
    s.lower_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return s;
}

bool can_featurize(const std::string& op) {
    try {
        return dynamic_cast<const HalideSpaceDef*>(&find_space(op)) != nullptr;
    } catch (const Error&) {
        return false;
    }
}

CacheSizes cache_sizes(const Target& t) {
    CacheSizes c;
    const Fingerprint& f = t.fingerprint;
    if (f.l1d_bytes > 0) c.l1 = double(f.l1d_bytes);
    if (f.l2_bytes > 0) c.l2 = double(f.l2_bytes);
    if (f.l3_bytes > 0) c.l3 = double(f.l3_bytes);
    if (f.cores > 0) c.cores = f.cores;
    return c;
}

// Up to this many loops of the hot nest, innermost first, get features of their own.
constexpr int kLevels = 8;

Features featurize(const Workload& w, const Config& c, const Target& t, const LoopNestSummary& n) {
    Features f;
    auto add = [&](const std::string& name, double v) {
        f.emplace_back(name, static_cast<float>(v));
    };

    // The workload.
    for (const auto& [name, values] : w.params)
        for (size_t i = 0; i < values.size(); ++i)
            add("shape." + name + (values.size() > 1 ? "." + std::to_string(i) : ""),
                log2p(double(values[i])));
    double in_bytes = 0;
    for (const TensorSpec& s : w.inputs())
        in_bytes += double(s.numel()) * 4;
    add("shape.flops", log2p(w.flops()));
    add("shape.input_bytes", log2p(in_bytes));
    add("shape.output_bytes", log2p(double(w.output().numel()) * 4));

    // The lowered loop nest.
    const CacheSizes caches = cache_sizes(t);
    const int depth = static_cast<int>(n.hot_loops.size());
    add("nest.depth", depth);
    for (int i = 0; i < std::min(depth, kLevels); ++i) {
        const LoopInfo& l = n.hot_loops[depth - 1 - i];
        const std::string p = "nest.L" + std::to_string(i) + ".";
        add(p + "extent", log2p(double(l.extent)));
        add(p + "parallel", l.kind == LoopKind::parallel);
        add(p + "unrolled", l.kind == LoopKind::unrolled);
        add(p + "working_set", log2p(l.working_set));
        add(p + "ws_vs_l1", std::log2((l.working_set + 1) / caches.l1));
        add(p + "ws_vs_l2", std::log2((l.working_set + 1) / caches.l2));
        add(p + "ws_vs_l3", std::log2((l.working_set + 1) / caches.l3));
    }
    const double inner_bytes = n.inner_load_bytes + n.inner_store_bytes;
    add("nest.lanes", n.hot_lanes);
    add("nest.hot_trips", log2p(n.hot_trips));
    add("nest.inner_flops", n.inner_flops);
    add("nest.inner_load_bytes", n.inner_load_bytes);
    add("nest.inner_store_bytes", n.inner_store_bytes);
    add("nest.inner_intensity", inner_bytes > 0 ? n.inner_flops / inner_bytes : 0);
    add("nest.flops", log2p(n.flops));
    add("nest.flops_vs_workload", w.flops() > 0 ? n.flops / w.flops() : 0);
    add("nest.load_bytes", log2p(n.load_bytes));
    add("nest.store_bytes", log2p(n.store_bytes));
    add("nest.bytes_per_flop", n.flops > 0 ? (n.load_bytes + n.store_bytes) / n.flops : 0);
    const double tasks = double(std::max<int64_t>(1, n.parallel_tasks));
    add("nest.parallel_tasks", log2p(tasks));
    add("nest.tasks_per_core", tasks / caches.cores);
    add("nest.imbalance", std::ceil(tasks / caches.cores) * caches.cores / tasks);
    add("nest.flops_per_task", log2p(n.flops / tasks));
    add("nest.allocations", log2p(n.allocations));
    add("nest.allocation_bytes", log2p(n.allocation_bytes));
    add("nest.statements", n.statements);

    // The config's own decisions.
    for (const auto& [name, v] : c.values) {
        if (const int64_t* i = std::get_if<int64_t>(&v))
            add("knob." + name, log2p(double(*i)));
        else
            add("knob." + name + "=" + std::get<std::string>(v), 1);
    }
    return f;
}

Features featurize(const Workload& w, const Config& c, const Target& t) {
    return featurize(w, c, t, summarize_loop_nest(w, c, t));
}

}  // namespace kiln
