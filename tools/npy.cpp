// kiln/tools/npy.cpp — reading and writing float32 .npy files (npy.h).
//
// The format: the magic "\x93NUMPY", a major and minor version byte, the header length (2 bytes
// little-endian in 1.0, 4 in 2.0), then a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }, padded with spaces
// and a newline so that the data starts at a multiple of 64 bytes.
#include "tools/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>

#include <fmt/format.h>

#include "core/error.h"

namespace kiln::tools {

NpyArray read_npy(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("npy", "cannot open '" + path + "'");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto bad = [&](const std::string& why) { return Error("npy", "'" + path + "': " + why); };
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw bad("not a .npy file (no \\x93NUMPY magic)");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t header_len = 0, start = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(bytes[8]) |
                     static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw bad("truncated header");
        for (int i = 0; i < 4; ++i)
            header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
        start = 12;
    } else {
        throw bad(fmt::format("unknown format version {}", major));
    }
    if (bytes.size() < start + header_len) throw bad("truncated header");
    const std::string header = bytes.substr(start, header_len);
    std::smatch m;
    if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
        throw bad("header without 'descr'");
    if (m[1] != "<f4" && m[1] != "=f4")
        throw bad("holds '" + m[1].str() + "'; kiln reads float32 ('<f4') arrays");
    if (std::regex_search(header, std::regex("'fortran_order'\\s*:\\s*True")))
        throw bad("is in Fortran order; save it in C order");
    if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
        throw bad("header without 'shape'");
    NpyArray a;
    const std::string dims = m[1];
    const std::regex number("\\d+");
    for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
        a.shape.push_back(std::stoll(it->str()));
    int64_t n = 1;
    for (int64_t d : a.shape)
        n *= d;
    const size_t data_at = start + header_len;
    if (bytes.size() - data_at != static_cast<size_t>(n) * sizeof(float))
        throw bad(fmt::format("holds {} bytes of data; shape ({}) needs {}", bytes.size() - data_at,
                              dims, n * 4));
    a.data.resize(static_cast<size_t>(n));
    std::memcpy(a.data.data(), bytes.data() + data_at, a.data.size() * sizeof(float));
    return a;
}

void write_npy(const std::string& path, const NpyArray& a) {
    std::string shape;  // Python's tuple: (), (3,), (1, 3)
    for (size_t i = 0; i < a.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(a.shape[i]);
    if (a.shape.size() == 1) shape += ",";
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::ofstream f(path, std::ios::binary);
    if (!f) throw Error("npy", "cannot write '" + path + "'");
    const char len[2] = {static_cast<char>(header.size() & 0xff),
                         static_cast<char>(header.size() >> 8)};
    f.write("\x93NUMPY\x01\x00", 8);
    f.write(len, 2);
    f << header;
    f.write(reinterpret_cast<const char*>(a.data.data()),
            static_cast<std::streamsize>(a.data.size() * sizeof(float)));
    if (!f) throw Error("npy", "cannot write '" + path + "'");
}

}  // namespace kiln::tools
