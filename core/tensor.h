// kiln/core/tensor.h — the shape and element type of one tensor at a kernel's boundary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kiln {

// A dense row-major tensor: shape[0] is the outermost dimension (N of NCHW).
struct TensorSpec {
    std::string name;  // "input", "weight", "bias", "residual", "output"
    std::vector<int64_t> shape;
    DType dtype = DType::f32;

    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape)
            n *= d;
        return n;
    }
    std::string to_string() const;  // "input f32[1,64,56,56]"
    bool operator==(const TensorSpec& o) const {
        return name == o.name && shape == o.shape && dtype == o.dtype;
    }
};

}  // namespace kiln
