// Helpers shared by the test files.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

// What the `kiln` command (KILN_BINARY) printed and how it exited.
struct Result {
    int code = -1;
    std::string out;
    std::string err;
};

inline std::string read_all(FILE* f) {
    std::string s;
    std::rewind(f);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
        s.append(buf, n);
    return s;
}

inline std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        v.push_back(line);
    return v;
}

#ifdef KILN_BINARY
// Runs the command. The child's KILN_DB points nowhere unless `env` ("KILN_DB=...") says
// otherwise, so no test reads or writes the user's tuning database.
inline Result run_kiln(const std::vector<std::string>& args,
                       const std::vector<std::string>& env = {}) {
    FILE* out = std::tmpfile();
    FILE* err = std::tmpfile();
    std::vector<char*> argv = {const_cast<char*>(KILN_BINARY)};
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        setenv("KILN_DB", "/nonexistent/kiln-tests/tuning.db", 1);
        for (const auto& e : env)
            putenv(const_cast<char*>(e.c_str()));
        execv(KILN_BINARY, argv.data());
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_all(out);
    r.err = read_all(err);
    std::fclose(out);
    std::fclose(err);
    return r;
}

// Bad input: exit 2 and nothing on stderr but one `kiln:` line, which contains `needle`.
inline void expect_bad_input(const std::vector<std::string>& args, const std::string& needle) {
    std::string cmd = "kiln";
    for (const auto& a : args)
        cmd += " " + a;
    SCOPED_TRACE(cmd);
    Result r = run_kiln(args);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    auto err = lines(r.err);
    ASSERT_EQ(err.size(), 1u) << r.err;
    EXPECT_EQ(err[0].rfind("kiln: ", 0), 0u) << err[0];
    EXPECT_NE(err[0].find(needle), std::string::npos) << err[0] << "\n does not contain " << needle;
}
#endif

}  // namespace kiln::testing
