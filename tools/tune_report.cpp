// kiln/tools/tune_report.cpp — see tune_report.h.
#include "tools/tune_report.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln::tools {

std::vector<TuneLogPoint> read_tune_log(const std::string& path) {
    std::vector<TuneLogPoint> points;
    std::ifstream in(path);
    if (!in) return points;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        if (line.empty()) continue;
        try {
            auto j = nlohmann::json::parse(line);
            if (j.at("format").get<int>() != 1)
                throw Error("format", "unknown format " + j.at("format").dump());
            TuneLogPoint p;
            p.elapsed_s = j.at("elapsed_s").get<double>();
            p.trials = j.at("trials").get<int>();
            p.estimate_ms = j.at("estimate_ms").is_null() ? 0 : j.at("estimate_ms").get<double>();
            p.task = j.at("task").get<std::string>();
            p.task_best_ms = j.at("task_best_ms").is_null() ? 0 : j["task_best_ms"].get<double>();
            points.push_back(p);
        } catch (const std::exception& e) {
            throw Error("tune log",
                        fmt::format("{}:{}: not a tuning log line ({})", path, number, e.what()));
        }
    }
    return points;
}

void append_tune_log(const std::string& path, const TuneLogPoint& p) {
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    nlohmann::json j = {
        {"format", 1},
        {"elapsed_s", p.elapsed_s},
        {"trials", p.trials},
        {"estimate_ms", p.estimate_ms > 0 ? nlohmann::json(p.estimate_ms) : nlohmann::json()},
        {"task", p.task},
        {"task_best_ms", p.task_best_ms > 0 ? nlohmann::json(p.task_best_ms) : nlohmann::json()}};
    std::ofstream out(path, std::ios::app);
    out << j.dump() << "\n";
    if (!out) throw Error("tune log", "cannot write " + path);
}

namespace {

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else
            out += c;
    }
    return out;
}

// One chart: estimate (y) against x, in a box of w x h at (left, top).
std::string chart(const std::vector<std::pair<double, double>>& xy, const std::string& x_label,
                  double left, double top, double w, double h) {
    double x_max = 0, y_max = 0, y_min = 1e300;
    for (auto [x, y] : xy) {
        x_max = std::max(x_max, x);
        y_max = std::max(y_max, y);
        y_min = std::min(y_min, y);
    }
    if (x_max <= 0) x_max = 1;
    y_min = std::max(0.0, y_min - 0.1 * (y_max - y_min));
    if (y_max <= y_min) y_max = y_min + 1;
    auto px = [&](double x) { return left + 50 + (w - 60) * x / x_max; };
    auto py = [&](double y) { return top + 10 + (h - 50) * (1 - (y - y_min) / (y_max - y_min)); };
    std::string s;
    s += fmt::format(
        "<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='none' stroke='#ccc'/>\n",
        left + 50, top + 10, w - 60, h - 50);
    for (int i = 0; i <= 4; ++i) {
        double y = y_min + (y_max - y_min) * i / 4, x = x_max * i / 4;
        s += fmt::format(
            "<text x='{:.1f}' y='{:.1f}' font-size='11' text-anchor='end'>{:.3g}</text>\n",
            left + 46, py(y) + 4, y);
        s += fmt::format(
            "<text x='{:.1f}' y='{:.1f}' font-size='11' text-anchor='middle'>{:.3g}</text>\n",
            px(x), top + h - 24, x);
    }
    s += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' text-anchor='middle'>{}</text>\n",
                     left + 50 + (w - 60) / 2, top + h - 6, escape(x_label));
    std::string path;
    for (auto [x, y] : xy)
        path += fmt::format("{}{:.1f},{:.1f} ", path.empty() ? "M" : "L", px(x), py(y));
    s += "<path d='" + path + "' fill='none' stroke='#1f6fb2' stroke-width='2'/>\n";
    return s;
}

}  // namespace

void write_tune_report(const std::string& path, const std::string& title,
                       const std::vector<TuneLogPoint>& points) {
    std::string ext = std::filesystem::path(path).extension().string();
    if (ext != ".svg" && ext != ".html")
        throw Error("report", "'" + path + "': the report is an .svg or an .html file");
    std::vector<std::pair<double, double>> by_time, by_trials;
    for (const TuneLogPoint& p : points)
        if (p.estimate_ms > 0) {
            by_time.push_back({p.elapsed_s / 60, p.estimate_ms});
            by_trials.push_back({double(p.trials), p.estimate_ms});
        }
    const double w = 900, h = 360;
    std::string svg = fmt::format(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' "
        "font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n",
        w, h);
    svg += fmt::format("<text x='10' y='20' font-size='14'>{}</text>\n", escape(title));
    svg += "<text x='10' y='38' font-size='11'>estimated kernel time of the model (ms)</text>\n";
    if (by_time.empty()) {
        svg +=
            "<text x='10' y='80' font-size='12'>no estimate yet: not every task has been "
            "measured</text>\n";
    } else {
        svg += chart(by_time, "tuning time (minutes)", 0, 40, w / 2, h - 40);
        svg += chart(by_trials, "trials", w / 2, 40, w / 2, h - 40);
    }
    svg += "</svg>\n";

    std::string text = svg;
    if (ext == ".html") {
        text = "<!doctype html>\n<html><head><meta charset='utf-8'><title>" + escape(title) +
               "</title></head><body>\n" + svg +
               "<table border='1' cellpadding='4' style='border-collapse:collapse'>\n"
               "<tr><th>minutes</th><th>trials</th><th>estimate (ms)</th><th>task</th>"
               "<th>its best (ms)</th></tr>\n";
        for (const TuneLogPoint& p : points)
            text += fmt::format(
                "<tr><td>{:.1f}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                p.elapsed_s / 60, p.trials,
                p.estimate_ms > 0 ? fmt::format("{:.4g}", p.estimate_ms) : "-", escape(p.task),
                p.task_best_ms > 0 ? fmt::format("{:.4g}", p.task_best_ms) : "-");
        text += "</table></body></html>\n";
    }
    std::ofstream out(path);
    out << text;
    if (!out) throw Error("report", "cannot write " + path);
}

}  // namespace kiln::tools
