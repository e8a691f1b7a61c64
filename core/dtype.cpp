#include "core/dtype.h"

#include <array>
#include <utility>

#include "core/error.h"

namespace kiln {
namespace {
constexpr std::array<std::pair<DType, std::string_view>, 8> kNames = {{
    {DType::f32, "f32"},
    {DType::f16, "f16"},
    {DType::i32, "i32"},
    {DType::i8, "i8"},
    {DType::u8, "u8"},
    {DType::i4, "i4"},
    {DType::u1, "u1"},
    {DType::i64, "i64"},
}};
}  // namespace

std::string_view to_string(DType t) {
    for (const auto& [d, n] : kNames)
        if (d == t) return n;
    return "?";
}

DType parse_dtype(std::string_view name, const std::string& field) {
    std::string known;
    for (const auto& [d, n] : kNames) {
        if (n == name) return d;
        known += (known.empty() ? "" : ", ") + std::string(n);
    }
    throw Error(field, "unknown dtype '" + std::string(name) + "' (known: " + known + ")");
}

int bits(DType t) {
    switch (t) {
        case DType::i64:
            return 64;
        case DType::f32:
        case DType::i32:
            return 32;
        case DType::f16:
            return 16;
        case DType::i8:
        case DType::u8:
            return 8;
        case DType::i4:
            return 4;
        case DType::u1:
            return 1;
    }
    return 0;
}

}  // namespace kiln
