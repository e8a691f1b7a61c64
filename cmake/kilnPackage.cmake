# How other projects find kiln: the package config (find_package(kiln) with kiln_add_model()),
# kiln.pc for pkg-config, and the install rules (docs/COMPILE.md, "Linking from CMake and
# pkg-config"). Included by the top-level CMakeLists.txt after every module and tools/.
#
# Two copies of each file are written from the same templates:
#   - the build tree's, <build>/kilnConfig.cmake and <build>/kiln.pc: -Dkiln_DIR=<build> (or
#     PKG_CONFIG_PATH=<build>) uses <build>/tools/kiln and the source tree's runtime/, with
#     nothing installed;
#   - the install's, lib/cmake/kiln/ and lib/pkgconfig/kiln.pc, relative to the prefix.
# The install layout (`cmake --install <build> --prefix P`):
#   P/bin/kiln                        the compiler, RPATH $ORIGIN/../lib
#   P/lib/libkiln_<module>.so         its module libraries
#   P/share/kiln/runtime/runtime.c    kiln's C runtime and its headers (kiln/runtime.h,
#   P/share/kiln/runtime/kiln/*.h     kiln/model_def.h), found by kiln through bin/../share
#   P/share/kiln/torch_peer.py        the PyTorch peer of `kiln bench`, found the same way
#   P/lib/cmake/kiln/                 kilnConfig.cmake, kilnConfigVersion.cmake, kilnAddModel.cmake
#   P/lib/pkgconfig/kiln.pc
include(CMakePackageConfigHelpers)

set(KILN_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
set(KILN_RUNTIME_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/kiln/runtime)

install(TARGETS kiln RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/runtime/runtime.c DESTINATION ${KILN_RUNTIME_INSTALL_DIR})
install(PROGRAMS ${PROJECT_SOURCE_DIR}/tools/torch_peer.py DESTINATION ${CMAKE_INSTALL_DATADIR}/kiln)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/kiln/ DESTINATION ${KILN_RUNTIME_INSTALL_DIR}/kiln
        FILES_MATCHING PATTERN "*.h")

write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)

# The build tree's config: absolute paths into this build and the source tree.
set(KILN_CONFIG_KIND "the build tree ${PROJECT_BINARY_DIR}")
set(KILN_CONFIG_EXECUTABLE ${PROJECT_BINARY_DIR}/tools/kiln)
set(KILN_CONFIG_RUNTIME_DIR ${PROJECT_SOURCE_DIR}/runtime)
set(KILN_CONFIG_MODULE_DIR ${PROJECT_SOURCE_DIR}/cmake)
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  INSTALL_DESTINATION ${PROJECT_BINARY_DIR} INSTALL_PREFIX ${PROJECT_BINARY_DIR}
  PATH_VARS KILN_CONFIG_EXECUTABLE KILN_CONFIG_RUNTIME_DIR KILN_CONFIG_MODULE_DIR)
set(KILN_PC_PREFIX ${PROJECT_BINARY_DIR})
set(KILN_PC_BINDIR ${PROJECT_BINARY_DIR}/tools)
set(KILN_PC_RUNTIMEDIR ${PROJECT_SOURCE_DIR}/runtime)
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)

# The install's: paths relative to the prefix, so the tree can be moved.
set(KILN_CONFIG_KIND "an install (cmake --install)")
set(KILN_CONFIG_EXECUTABLE ${CMAKE_INSTALL_BINDIR}/kiln)
set(KILN_CONFIG_RUNTIME_DIR ${KILN_RUNTIME_INSTALL_DIR})
set(KILN_CONFIG_MODULE_DIR ${KILN_CMAKE_INSTALL_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in ${PROJECT_BINARY_DIR}/install/kilnConfig.cmake
  INSTALL_DESTINATION ${KILN_CMAKE_INSTALL_DIR}
  PATH_VARS KILN_CONFIG_EXECUTABLE KILN_CONFIG_RUNTIME_DIR KILN_CONFIG_MODULE_DIR)
file(RELATIVE_PATH kiln_pc_to_prefix ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" kiln_pc_to_prefix "${kiln_pc_to_prefix}")
set(KILN_PC_PREFIX "\${pcfiledir}/${kiln_pc_to_prefix}")
set(KILN_PC_BINDIR "\${prefix}/${CMAKE_INSTALL_BINDIR}")
set(KILN_PC_RUNTIMEDIR "\${prefix}/${KILN_RUNTIME_INSTALL_DIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/install/kiln.pc @ONLY)

install(FILES ${PROJECT_BINARY_DIR}/install/kilnConfig.cmake
              ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/kilnAddModel.cmake
        DESTINATION ${KILN_CMAKE_INSTALL_DIR})
install(FILES ${PROJECT_BINARY_DIR}/install/kiln.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
