// kiln/core/error.h — the one error type of kiln.
//
// Every error names what was wrong: the field of a workload, a knob of a config, a target name,
// a file. Callers catch kiln::Error and print what(); field() lets tests check which field.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
  public:
    // `field` is the offending field ("c", "stride", "knob tile_k", "target"); may be empty.
    Error(std::string field, const std::string& message)
        : std::runtime_error(field.empty() ? message : field + ": " + message),
          field_(std::move(field)) {}
    const std::string& field() const { return field_; }

  private:
    std::string field_;
};

}  // namespace kiln
