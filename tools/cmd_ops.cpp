// kiln/tools/cmd_ops.cpp — `kiln ops`: what ops exist, their parameters, their schedule spaces.
//
// Everything is gathered once into JSON by describe_op(); the text, --json and --markdown forms
// are three renderings of it, so they cannot disagree. --markdown prints only what does not
// depend on the machine (no knob domains), which is what docs/WORKLOADS.md embeds and
// tests/test_cli.cpp checks against.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/op.h"
#include "core/workload.h"
#include "schedules/kernel.h"
#include "targets/target.h"
#include "tools/commands.h"
#include "tools/table.h"

namespace kiln::tools {
namespace {

using nlohmann::json;

struct OpsOptions {
    std::string op;  // empty: every op
    std::string shape;
    std::string target = "host";
    bool json = false;
    bool markdown = false;
};

json knob_value_json(const KnobValue& v) {
    if (auto p = std::get_if<int64_t>(&v)) return *p;
    return std::get<std::string>(v);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i)
        s += (i ? sep : "") + parts[i];
    return s;
}

json describe_space(const OpDef& def, const Workload& w, const Target& t) {
    const SpaceDef* space_def = nullptr;
    try {
        space_def = &find_space(def.name());
    } catch (const Error&) {
        return nullptr;  // the op is defined but nothing compiles it yet
    }
    ScheduleSpace space = space_def->space(w, t);
    json knobs = json::array();
    for (const auto& k : space.knobs) {
        json domain = json::array();
        for (const auto& v : k.domain)
            domain.push_back(knob_value_json(v));
        knobs.push_back({{"name", k.name},
                         {"help", k.help},
                         {"domain", domain},
                         {"active_in_default", space.default_config.has(k.name)}});
    }
    return {{"workload", w.key()},
            {"version", space.version},
            {"size", space.size()},
            {"knobs", knobs},
            {"constraints", space.constraints.size()},
            {"default_config", space.default_config.to_json()},
            {"default_config_hash", fmt::format("{:016x}", space.default_config.hash())}};
}

json describe_op(const OpDef& def, const std::string& shape, const Target& t) {
    json params = json::array();
    for (const auto& p : def.params()) {
        params.push_back({{"name", p.name},
                          {"token", p.token},
                          {"segment", p.group},
                          {"arity", p.arity},
                          {"default", p.default_value < 0 ? json(nullptr) : json(p.default_value)},
                          {"min", p.min_value},
                          {"help", p.help}});
    }
    json dtypes = json::array();
    for (DType d : def.dtypes())
        dtypes.push_back(std::string(to_string(d)));
    Workload example = Workload::from_shape(def.name(), def.example());
    Workload w = shape.empty() ? example : Workload::from_shape(def.name(), shape);
    return {{"name", def.name()},
            {"summary", def.summary()},
            {"dtypes", dtypes},
            {"example", def.example()},
            {"example_key", example.key()},
            {"params", params},
            {"space", describe_space(def, w, t)}};
}

std::string value_text(const json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string default_text(const json& p) {
    return p["default"].is_null() ? "required" : std::to_string(p["default"].get<int64_t>());
}

void print_text(const json& op, const std::string& target_name) {
    std::printf("%s  %s\n", op["name"].get<std::string>().c_str(),
                op["summary"].get<std::string>().c_str());
    std::vector<std::string> dtypes;
    for (const auto& d : op["dtypes"])
        dtypes.push_back(d.get<std::string>());
    std::printf("  dtypes   %s\n", join(dtypes, ", ").c_str());
    std::printf("  example  kiln bench-op %s --shape %s\n", op["name"].get<std::string>().c_str(),
                op["example"].get<std::string>().c_str());
    std::printf("  parameters\n");
    std::vector<std::vector<std::string>> rows = {
        {"name", "key", "values", "default", "min", "help"}};
    for (const auto& p : op["params"])
        rows.push_back({p["name"], p["token"], std::to_string(p["arity"].get<int>()),
                        default_text(p), std::to_string(p["min"].get<int64_t>()), p["help"]});
    print_table(rows, "    ");
    const json& space = op["space"];
    if (space.is_null()) {
        std::printf("  no schedule space yet\n\n");
        return;
    }
    std::printf(
        "  schedule space for %s on %s (version %d, at most %.4g configs, %d constraints)\n",
        space["workload"].get<std::string>().c_str(), target_name.c_str(),
        space["version"].get<int>(), space["size"].get<double>(), space["constraints"].get<int>());
    rows = {{"knob", "domain", "help"}};
    for (const auto& k : space["knobs"]) {
        std::vector<std::string> domain;
        for (const auto& v : k["domain"])
            domain.push_back(value_text(v));
        std::string help = k["help"];
        if (!k["active_in_default"].get<bool>()) help += " (inactive in the default)";
        rows.push_back({k["name"], join(domain, " "), help});
    }
    print_table(rows, "    ");
    std::printf("  default config  %s\n\n", space["default_config"].dump().c_str());
}

void print_markdown(const json& op) {
    const std::string name = op["name"];
    std::vector<std::string> dtypes;
    for (const auto& d : op["dtypes"])
        dtypes.push_back("`" + d.get<std::string>() + "`");
    std::printf("### %s\n\n%s. Dtypes: %s.\n\n", name.c_str(),
                op["summary"].get<std::string>().c_str(), join(dtypes, ", ").c_str());
    std::printf("Example: `kiln bench-op %s --shape %s`, key `%s`.\n\n", name.c_str(),
                op["example"].get<std::string>().c_str(),
                op["example_key"].get<std::string>().c_str());
    std::printf("| parameter | key token | key segment | values | default | minimum | meaning |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (const auto& p : op["params"])
        std::printf("| `%s` | `%s` | %d | %d | %s | %lld | %s |\n",
                    p["name"].get<std::string>().c_str(), p["token"].get<std::string>().c_str(),
                    p["segment"].get<int>() + 1, p["arity"].get<int>(), default_text(p).c_str(),
                    static_cast<long long>(p["min"].get<int64_t>()),
                    p["help"].get<std::string>().c_str());
    std::printf("\n");
}

void run_ops(const OpsOptions& o) {
    if (!o.shape.empty() && o.op.empty())
        throw Error("shape", "--shape needs an OP, e.g. kiln ops conv2d --shape ...");
    std::vector<const OpDef*> ops = o.op.empty() ? all_ops() : std::vector{&find_op(o.op)};
    Target t = parse_target(o.target);
    json all = json::array();
    for (const OpDef* def : ops)
        all.push_back(describe_op(*def, o.shape, t));
    if (o.json) {
        std::printf("%s\n", json({{"target", t.to_json()}, {"ops", all}}).dump(2).c_str());
    } else if (o.markdown) {
        for (const auto& op : all)
            print_markdown(op);
    } else {
        for (const auto& op : all)
            print_text(op, t.name);
    }
}

}  // namespace

void add_ops(CLI::App& app) {
    auto o = std::make_shared<OpsOptions>();
    CLI::App* cmd = app.add_subcommand(
        "ops", "List ops: parameters, key tokens, schedule knobs and default configs");
    cmd->add_option("OP", o->op, "Only this op (default: every registered op)");
    cmd->add_option("--shape", o->shape,
                    "Show knob domains for this shape instead of the op's example "
                    "(needs OP), e.g. c=32,h=28,w=28,k=32,r=3,s=3,pad=1");
    cmd->add_option("--target", o->target,
                    "Target the knob domains are built for: host, x86-64-linux-avx2, "
                    "x86-64-linux-avx512, arm-64-linux or a Halide target string")
        ->capture_default_str();
    CLI::Option* json_flag = cmd->add_flag("--json", o->json, "Print the same as JSON");
    cmd->add_flag("--markdown", o->markdown,
                  "Print the parameter tables as Markdown (as embedded in docs/WORKLOADS.md)")
        ->excludes(json_flag);
    cmd->footer(
        "Examples:\n"
        "  kiln ops\n"
        "  kiln ops conv2d --shape c=32,h=28,w=28,k=32,r=3,s=3,pad=1 --target x86-64-linux-avx2\n"
        "  kiln ops --json");
    cmd->callback([o] { run_ops(*o); });
}

}  // namespace kiln::tools
