// kiln/tools/db_path.cpp — the default tuning database path (see db_path.h).
#include "tools/db_path.h"

#include <cstdlib>

#include "core/error.h"

namespace kiln::tools {

std::string default_database_path() {
    const char* env = std::getenv("KILN_DB");
    if (env && *env) return env;
    const char* home = std::getenv("HOME");
    if (!home || !*home)
        throw Error("db", "no database given: pass --db PATH or set KILN_DB (HOME is not set)");
    return std::string(home) + "/.cache/kiln/tuning.db";
}

std::string database_path(const std::string& option) {
    return option.empty() ? default_database_path() : option;
}

}  // namespace kiln::tools
