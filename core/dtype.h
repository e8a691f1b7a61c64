// kiln/core/dtype.h — element types of tensors.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

// i64 is ONNX's type of shapes and indices (Reshape, Shape, Gather); no kernel computes in it.
enum class DType { f32, f16, i32, i8, u8, i4, u1, i64 };

std::string_view to_string(DType t);
// Throws kiln::Error naming `field` for an unknown name.
DType parse_dtype(std::string_view name, const std::string& field = "dtype");
int bits(DType t);

}  // namespace kiln
