// kiln/core/hash.h — the one stable string hash kiln persists (config hashes, machine
// fingerprints, file names): 64-bit FNV-1a, the same on every machine and run.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiln {

inline uint64_t fnv1a(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char ch : s) {
        h ^= ch;
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace kiln
