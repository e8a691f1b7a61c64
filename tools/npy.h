// kiln/tools/npy.h — NumPy .npy files of float32 arrays, for `kiln run`'s inputs and outputs.
//
// Version 1.0 and 2.0 headers, little-endian float32 ('<f4'), C order. Anything else is refused
// with an Error naming the file and what it holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> data;
};

NpyArray read_npy(const std::string& path);
void write_npy(const std::string& path, const NpyArray& a);

}  // namespace kiln::tools
