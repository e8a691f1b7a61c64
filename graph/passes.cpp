// kiln/graph/passes.cpp — the cleanup passes (identities, constants, dead code), optimize() and
// its report. BN folding is in fold_bn.cpp, epilogue fusion in fuse.cpp (see passes.h).
#include "graph/passes.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "core/error.h"
#include "graph/op.h"
#include "graph/rewrite.h"

namespace kiln::graph {

PassResult fold_constants(Graph& g, int64_t max_elements) {
    PassResult r;
    std::vector<char> dead(g.nodes.size(), 0);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        const GraphOp* op = find_graph_op(n.op);
        if (!op) {
            r.notes.push_back("node " + n.label() + " is not folded: no registered op " + n.op);
            continue;
        }
        std::vector<const Tensor*> in;
        std::vector<Tensor> shape_only;  // inputs of ops that read only shapes (Shape)
        shape_only.reserve(n.inputs.size());
        int64_t in_size = 0;
        bool constant = true;
        for (ValueId id : n.inputs) {
            if (id == kNoId) {
                in.push_back(nullptr);
                continue;
            }
            const Value& v = g.value(id);
            if (v.is_constant()) {
                in.push_back(v.data.get());
                in_size += v.numel();
            } else if (!op->reads_input_data()) {
                shape_only.push_back(Tensor{v.dtype, v.shape, {}});
                in.push_back(&shape_only.back());
            } else {
                constant = false;
                break;
            }
        }
        if (!constant) continue;
        std::vector<Tensor> out;
        int64_t out_size = 0;
        for (ValueId id : n.outputs) {
            out.push_back(Tensor::zeros(g.value(id).dtype, g.value(id).shape));
            out_size += out.back().numel();
        }
        if (out_size > std::max(in_size, max_elements)) {
            r.notes.push_back("node " + n.label() + " is not folded: its outputs hold " +
                              std::to_string(out_size) + " elements, more than its inputs and " +
                              "the limit of " + std::to_string(max_elements));
            continue;
        }
        try {
            op->evaluate(n, g.opset, in, out);
        } catch (const Error& e) {
            r.notes.push_back("node " + n.label() + " is not folded: " + e.what());
            continue;
        }
        for (size_t k = 0; k < out.size(); ++k)
            g.value(n.outputs[k]).data = std::make_shared<const Tensor>(std::move(out[k]));
        dead[i] = 1;
        ++r.changed;
    }
    if (r.changed) {
        erase_nodes(g, dead);
        g.prune();
    }
    return r;
}

PassResult remove_identities(Graph& g) {
    PassResult r;
    std::vector<char> dead(g.nodes.size(), 0);
    // Rewiring below never changes which values are graph inputs or outputs.
    const Uses uses(g);
    auto is_output = [&](ValueId v) { return uses.is_output[v] != 0; };
    auto is_input = [&](ValueId v) { return uses.is_input[v] != 0; };
    for (size_t i = 0; i < g.nodes.size(); ++i) {
        Node& n = g.nodes[i];
        if ((n.op != "Identity" && n.op != "Dropout") || n.inputs.empty() ||
            n.outputs.size() != 1 || n.inputs[0] == kNoId)
            continue;
        const ValueId in = n.inputs[0], out = n.outputs[0];
        if (!is_output(out)) {
            g.replace_uses(out, in);
        } else if (g.value(in).is_constant()) {
            g.value(out).data = g.value(in).data;  // the output becomes the same constant
        } else if (g.value(in).producer != kNoId && !is_output(in) && !is_input(in)) {
            // The output keeps its name: the node that made the input makes the output instead.
            const NodeId p = g.value(in).producer;
            g.replace_uses(in, out);
            std::replace(g.nodes[p].outputs.begin(), g.nodes[p].outputs.end(), in, out);
            g.value(out).producer = p;
            g.value(in).producer = kNoId;
        } else {
            r.notes.push_back(n.label() + " stays: it copies " +
                              (is_input(in) ? "graph input '" : "graph output '") +
                              g.value(in).name + "' to graph output '" + g.value(out).name + "'");
            continue;
        }
        dead[i] = 1;
        ++r.changed;
    }
    if (r.changed) {
        erase_nodes(g, dead);
        g.prune();
    }
    return r;
}

PassResult eliminate_dead_code(Graph& g) {
    PassResult r;
    std::vector<char> needed(g.values.size(), 0);
    for (ValueId v : g.outputs)
        needed[v] = 1;
    std::vector<char> dead(g.nodes.size(), 0);
    for (size_t i = g.nodes.size(); i-- > 0;) {
        const Node& n = g.nodes[i];
        bool live = false;
        for (ValueId v : n.outputs)
            live = live || needed[v];
        if (!live) {
            dead[i] = 1;
            ++r.changed;
            continue;
        }
        for (ValueId v : n.inputs)
            if (v != kNoId) needed[v] = 1;
    }
    if (r.changed) erase_nodes(g, dead);
    g.prune();
    return r;
}

PassReport optimize(Graph& g, const PassOptions& options) {
    g.validate();
    PassReport report;
    report.nodes_before = g.nodes.size();
    auto run = [&](const char* name, const std::function<PassResult()>& pass) {
        PassResult r = pass();
        report.notes.insert(report.notes.end(), r.notes.begin(), r.notes.end());
        if (options.validate) {
            try {
                g.validate();
            } catch (const Error& e) {
                throw Error(std::string("pass ") + name,
                            std::string("left an invalid graph: ") + e.what());
            }
        }
        return r;
    };
    if (options.eliminate_dead_code)
        report.dead_nodes_removed +=
            run("eliminate_dead_code", [&] { return eliminate_dead_code(g); }).changed;
    if (options.remove_identities)
        report.identities_removed =
            run("remove_identities", [&] { return remove_identities(g); }).changed;
    if (options.fold_constants)
        report.constants_folded = run("fold_constants", [&] {
                                      return fold_constants(g, options.fold_max_elements);
                                  }).changed;
    if (options.fold_batch_norm)
        report.batch_norms_folded =
            run("fold_batch_norm", [&] { return fold_batch_norm(g); }).changed;
    if (options.fuse_epilogues) {
        PassResult r = run("fuse_epilogues", [&] { return fuse_epilogues(g); });
        report.kernel_nodes = r.changed;
        report.epilogues_fused = r.fused;
        report.nodes_absorbed = r.absorbed;
    }
    if (options.eliminate_dead_code)
        report.dead_nodes_removed +=
            run("eliminate_dead_code", [&] { return eliminate_dead_code(g); }).changed;
    report.nodes_after = g.nodes.size();
    return report;
}

std::string PassReport::to_string() const {
    auto line = [](const std::string& name, const std::string& value) {
        std::string s = name;
        s.resize(std::max<size_t>(s.size() + 2, 20), ' ');
        return s + value + "\n";
    };
    std::string s =
        line("nodes", std::to_string(nodes_before) + " -> " + std::to_string(nodes_after));
    s += line("identities removed", std::to_string(identities_removed));
    s += line("constants folded", std::to_string(constants_folded));
    s += line("dead nodes removed", std::to_string(dead_nodes_removed));
    s += line("batch norms folded", std::to_string(batch_norms_folded));
    s += line("kernel nodes", std::to_string(kernel_nodes) + " (kiln.Conv, kiln.Dense)");
    s += line("epilogues fused", std::to_string(epilogues_fused) + " (" +
                                     std::to_string(nodes_absorbed) + " nodes absorbed)");
    if (!notes.empty()) {
        s += "not folded or fused\n";
        for (const auto& n : notes)
            s += "  " + n + "\n";
    }
    return s;
}

}  // namespace kiln::graph
