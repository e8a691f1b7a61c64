// kiln/tools/table.h — plain-text tables for the command's output.
#pragma once

#include <string>
#include <vector>

namespace kiln::tools {

// Prints rows with columns padded to their widest cell (the last column is not padded), each
// line starting with `indent`.
void print_table(const std::vector<std::vector<std::string>>& rows, const std::string& indent);

}  // namespace kiln::tools
