// kiln/generators/gemm.cpp — the Halide algorithm shared by dense and batch_matmul.
//
// See gemm.h for the three stages (inner, acc, out). The ops' own files (dense.cpp,
// batch_matmul.cpp) decide where the panels come from.
#include "generators/gemm.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "generators/epilogue.h"

namespace kiln {

using Halide::Expr;
using Halide::Func;
using Halide::Var;

int64_t panel_count(int64_t n, int nr) {
    return (n + nr - 1) / nr;
}

void set_dense_shape(Halide::OutputImageParam p, const std::vector<int>& extents) {
    int stride = 1;
    for (size_t d = 0; d < extents.size(); ++d) {
        p.dim(static_cast<int>(d)).set_bounds(0, extents[d]).set_stride(stride);
        stride *= extents[d];
    }
}

namespace {

// Appends the batch variable when the GEMM has one.
template <class T>
std::vector<T> with_batch(std::vector<T> args, const Var& b, bool batched) {
    if (batched) args.push_back(b);
    return args;
}

}  // namespace

Func pack_panels(Func src, int64_t n, int nr, bool batched) {
    Var jj("jj"), k("k"), jo("jo"), b("b");
    Func panels("gemm_panels");
    Expr col = jo * nr + jj;
    Expr inside = col < static_cast<int>(n);
    Expr clamped = Halide::clamp(col, 0, static_cast<int>(n - 1));
    panels(with_batch<Var>({jj, k, jo}, b, batched)) =
        Halide::select(inside, src(with_batch<Expr>({clamped, k}, b, batched)), 0.0f);
    return panels;
}

GemmFuncs gemm_algorithm(const GemmShape& s, int nr, int64_t kc, Func a, Func panels,
                         const Epilogue& e, Func bias, Func residual, bool bias_by_row) {
    GemmFuncs f;
    f.nr = nr;
    f.kc = std::min(kc, s.k);
    f.blocked = s.k > f.kc;
    f.batched = s.batch > 0;
    if (s.k % f.kc != 0)
        throw Error("kc", "kc=" + std::to_string(kc) + " does not divide k=" + std::to_string(s.k));
    const int KC = static_cast<int>(f.kc);

    Halide::RDom rk(0, KC, "rk");
    Expr k = f.ko * KC + rk.x;
    f.rk = rk.x;

    auto inner_args = with_batch<Var>({f.jj, f.jo, f.i, f.ko}, f.b, f.batched);
    f.inner(inner_args) = 0.0f;
    f.inner(inner_args) += a(with_batch<Expr>({k, f.i}, f.b, f.batched)) *
                           panels(with_batch<Expr>({f.jj, k, f.jo}, f.b, f.batched));

    // Every (j, i) is an element of one panel's register tile.
    Expr jj = f.j % nr, jo = f.j / nr;
    Expr sum;
    if (f.blocked) {
        Halide::RDom rb(0, static_cast<int>((s.k + KC - 1) / KC), "rb");
        f.rb = rb.x;
        auto acc_args = with_batch<Var>({f.jj, f.jo, f.i}, f.b, f.batched);
        f.acc(acc_args) = 0.0f;
        f.acc(acc_args) += f.inner(with_batch<Expr>({f.jj, f.jo, f.i, rb.x}, f.b, f.batched));
        sum = f.acc(with_batch<Expr>({jj, jo, f.i}, f.b, f.batched));
    } else {
        sum = f.inner(with_batch<Expr>({jj, jo, f.i, 0}, f.b, f.batched));
    }
    Expr bias_value = e.bias ? bias(bias_by_row ? f.i : f.j) : Expr();
    Expr residual_value =
        e.residual ? residual(with_batch<Expr>({f.j, f.i}, f.b, f.batched)) : Expr();
    f.out(with_batch<Var>({f.j, f.i}, f.b, f.batched)) =
        apply_epilogue(e, sum, bias_value, residual_value);
    return f;
}

}  // namespace kiln
