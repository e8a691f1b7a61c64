// kiln/graph/passes.h — the graph passes: folding, cleanup, BN folding, epilogue fusion.
//
// Each pass rewrites a Graph in place, keeps it valid (Graph::validate) with its outputs' names
// and values unchanged up to float rounding, and says what it did and, one line per case, what
// it could not do and why. optimize() runs them in order and is what callers use; the single
// passes are for tests and for tools that want one step. Start with optimize() and PassOptions.
//
//   remove_identities    Identity and inference Dropout: readers read the input instead
//   fold_constants       nodes whose inputs are all constants become constants
//   eliminate_dead_code  nodes whose outputs reach no graph output are dropped
//   fold_batch_norm      Conv -> BatchNormalization becomes one Conv with new weight and bias
//   fuse_epilogues       Conv/Gemm/MatMul + bias add + residual add + relu/clip -> kiln.Conv or
//                        kiln.Dense (graph/fused.h), the nodes extract_tasks() reads
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln::graph {

// What one pass did.
struct PassResult {
    // What the pass counts: nodes folded into constants, identities removed, dead nodes removed,
    // BatchNormalizations folded, or (fusion) kiln.Conv / kiln.Dense nodes formed.
    int changed = 0;
    int fused = 0;     // fusion: kernel nodes that took in at least one following node
    int absorbed = 0;  // fusion: Add, Relu and Clip nodes merged into a kernel node
    // What the pass left alone and why, one line each, naming the node: "BatchNormalization
    // 'bn2' stays: its input 'c2' is also a graph output".
    std::vector<std::string> notes;
};

// Above this many output elements (and more than its inputs hold), a node is not folded: the
// model would grow by a constant larger than what it computes from. The same rule as import's.
constexpr int64_t kFoldMaxElements = int64_t{1} << 16;

PassResult fold_constants(Graph& g, int64_t max_elements = kFoldMaxElements);
PassResult remove_identities(Graph& g);
PassResult eliminate_dead_code(Graph& g);
PassResult fold_batch_norm(Graph& g);
PassResult fuse_epilogues(Graph& g);

struct PassOptions {
    // Remove Identity and inference Dropout nodes (readers read their input).
    bool remove_identities = true;
    // Evaluate nodes whose inputs are all constants with their reference; they become
    // constants. Import folds once already; this catches what other passes expose.
    bool fold_constants = true;
    // fold_constants' size limit (elements), see kFoldMaxElements.
    int64_t fold_max_elements = kFoldMaxElements;
    // Fold inference BatchNormalization into the Conv before it (weight and bias rescaled in
    // double, stored as f32).
    bool fold_batch_norm = true;
    // Merge Conv, Gemm and MatMul with constant weights and their bias add, residual add and
    // relu or clip into kiln.Conv and kiln.Dense nodes.
    bool fuse_epilogues = true;
    // Drop nodes whose outputs reach no graph output (before and after the rewrites).
    bool eliminate_dead_code = true;
    // Check the graph (Graph::validate) after every pass; a failure is a bug in the pass and
    // throws kiln::Error naming it.
    bool validate = true;
};

// What optimize() did, for people (`kiln inspect --kernels`) and tests.
struct PassReport {
    size_t nodes_before = 0;
    size_t nodes_after = 0;
    int identities_removed = 0;
    int constants_folded = 0;
    int dead_nodes_removed = 0;
    int batch_norms_folded = 0;
    int kernel_nodes = 0;     // kiln.Conv and kiln.Dense nodes formed
    int epilogues_fused = 0;  // of them, those that took in following nodes
    int nodes_absorbed = 0;   // Add, Relu and Clip nodes taken into kernel nodes
    // What did not fold or fuse, and why (each pass's notes, in pass order).
    std::vector<std::string> notes;

    // One "name  value" line per count, then the notes; each line ends in '\n'.
    std::string to_string() const;
};

// Runs the passes PassOptions enables, in the order listed at the top of this file (dead code
// also first), and reports. Throws kiln::Error when a pass leaves an invalid graph (a bug).
PassReport optimize(Graph& g, const PassOptions& options = {});

}  // namespace kiln::graph
