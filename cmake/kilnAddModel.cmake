# kiln_add_model(): compile an ONNX model with `kiln compile` at build time and link it like any
# other library. Included by kilnConfig.cmake, which sets KILN_EXECUTABLE and KILN_RUNTIME_DIR.
#
#   kiln_add_model(NAME MODEL <file.onnx> [TARGET <target>] [DB <db> | NO_DB])
#
# Creates
#   - a custom command that runs `kiln compile` into ${CMAKE_CURRENT_BINARY_DIR}/kiln_models/NAME
#     (libNAME.a, NAME.h, NAME.json, kiln/runtime.h), rerun when the model, the database, the
#     kiln executable or kiln's C runtime changes;
#   - the custom target kiln_model_NAME that runs it;
#   - the imported static library kiln::NAME: its include directory is the output directory
#     (#include "NAME.h"), it links Threads::Threads, ${CMAKE_DL_LIBS} and m, and whatever links
#     it waits for kiln_model_NAME.
# TARGET is kiln's --target (default: kiln's, the host). DB gives --db; NO_DB gives --no-db;
# with neither, kiln uses $KILN_DB or ~/.cache/kiln/tuning.db, which the build does not track.
# The variable KILN_MODEL_<NAME>_JSON names the model's NAME.json.
function(kiln_add_model name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_DB" "MODEL;TARGET;DB" "")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kiln_add_model(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "kiln_add_model(${name}): the name must be a C identifier "
                        "(it names libNAME.a and kiln_model_NAME())")
  endif()
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "kiln_add_model(${name}): MODEL <file.onnx> is required")
  endif()
  if(ARG_DB AND ARG_NO_DB)
    message(FATAL_ERROR "kiln_add_model(${name}): DB and NO_DB exclude each other")
  endif()
  if(TARGET kiln::${name})
    message(FATAL_ERROR "kiln_add_model(${name}): kiln::${name} already exists")
  endif()

  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(out "${CMAKE_CURRENT_BINARY_DIR}/kiln_models/${name}")
  set(outputs "${out}/lib${name}.a" "${out}/${name}.h" "${out}/${name}.json"
              "${out}/kiln/runtime.h")
  set(args compile "${model}" -o "${out}" --name "${name}")
  set(depends "${model}" "${KILN_EXECUTABLE}" "${KILN_RUNTIME_DIR}/runtime.c"
              "${KILN_RUNTIME_DIR}/kiln/runtime.h" "${KILN_RUNTIME_DIR}/kiln/model_def.h")
  if(ARG_TARGET)
    list(APPEND args --target "${ARG_TARGET}")
  endif()
  if(ARG_NO_DB)
    list(APPEND args --no-db)
  elseif(ARG_DB)
    get_filename_component(db "${ARG_DB}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --db "${db}")
    # A database that does not exist yet means default configs; depend on it once it does.
    if(EXISTS "${db}")
      list(APPEND depends "${db}")
    endif()
  endif()

  add_custom_command(
    OUTPUT ${outputs}
    COMMAND "${KILN_EXECUTABLE}" ${args}
    DEPENDS ${depends}
    COMMENT "kiln compile: model ${name} from ${model}"
    VERBATIM)
  add_custom_target(kiln_model_${name} DEPENDS ${outputs})

  # An imported target's include directory must exist when the project is generated.
  file(MAKE_DIRECTORY "${out}")
  add_library(kiln::${name} STATIC IMPORTED GLOBAL)
  set_target_properties(
    kiln::${name}
    PROPERTIES IMPORTED_LOCATION "${out}/lib${name}.a"
               IMPORTED_LINK_INTERFACE_LANGUAGES C
               INTERFACE_INCLUDE_DIRECTORIES "${out}"
               INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
  # Followed by everything that links kiln::NAME: the model is compiled before they link.
  add_dependencies(kiln::${name} kiln_model_${name})
  set(KILN_MODEL_${name}_JSON "${out}/${name}.json" PARENT_SCOPE)
endfunction()
