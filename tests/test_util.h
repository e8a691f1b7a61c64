// Helpers shared by the test files.
#pragma once

#include <functional>
#include <string>

#include "core/error.h"

namespace kiln::testing {

// The field named by the kiln::Error that `f` throws, or "<no error>".
inline std::string error_field(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.field();
    }
    return "<no error>";
}

}  // namespace kiln::testing
