# Writes halo_build_info.h with the commit the sources were built from (`git describe --always --dirty`), or
# "unknown" outside a git checkout. The file is rewritten only when the text changes, so an unchanged commit
# rebuilds nothing. Run at every build: cmake -DSOURCE_DIR=<sources> -DOUTPUT=<header> -P build_info.cmake
set(commit "unknown")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --dirty
                  WORKING_DIRECTORY "${SOURCE_DIR}"
                  OUTPUT_VARIABLE described RESULT_VARIABLE status
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(status EQUAL 0 AND described MATCHES "^[0-9A-Za-z._/+-]+$")
    set(commit "${described}")
  endif()
endif()
set(text "// Generated at build time by cmake/build_info.cmake; do not edit.\n#pragma once\n#define HALO_BUILD_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
