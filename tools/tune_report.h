// kiln/tools/tune_report.h — the tuning curve of `kiln tune`: its log and its drawing.
//
// `kiln tune` appends one JSON line per measured batch to a log beside the database
// (<db>.tune/<model>-<target hash>.jsonl; docs/CLI.md, `kiln tune`, has the fields). Times and
// trials accumulate across runs, so a resumed tuning continues the curve. The report draws the
// estimated model kernel time against tuning time and against trials, as SVG (or an HTML page
// holding the SVG and a table).
#pragma once

#include <string>
#include <vector>

namespace kiln::tools {

struct TuneLogPoint {
    double elapsed_s = 0;     // tuning time over every run so far
    int trials = 0;           // trials over every run so far
    double estimate_ms = 0;   // sum of count x best over the tasks; 0 = not every task has one
    std::string task;         // the task the batch went to
    double task_best_ms = 0;  // its best after the batch
};

// Reads a log; a missing file is an empty log. A line that is not a log point throws
// kiln::Error naming the file and the line number.
std::vector<TuneLogPoint> read_tune_log(const std::string& path);
void append_tune_log(const std::string& path, const TuneLogPoint& p);

// Writes an .svg, or an .html page (any other extension is an error), of the points that have
// an estimate. `title` heads the drawing.
void write_tune_report(const std::string& path, const std::string& title,
                       const std::vector<TuneLogPoint>& points);

}  // namespace kiln::tools
