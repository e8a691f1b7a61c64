#include "core/tensor.h"

namespace kiln {

std::string TensorSpec::to_string() const {
    std::string s = name + " " + std::string(kiln::to_string(dtype)) + "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace kiln
