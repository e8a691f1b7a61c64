// kiln/tools/db_path.h — where the `kiln` command finds the tuning database.
//
// Only the command reads the environment; the library takes a path.
#pragma once

#include <string>

namespace kiln::tools {

// $KILN_DB when set and not empty, else ~/.cache/kiln/tuning.db. Throws kiln::Error("db", ...)
// when neither KILN_DB nor HOME is set.
std::string default_database_path();

// The --db option when given, else default_database_path().
std::string database_path(const std::string& option);

}  // namespace kiln::tools
