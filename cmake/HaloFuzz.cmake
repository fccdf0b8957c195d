# Fuzz targets. Each target is one source file defining LLVMFuzzerTestOneInput.
#   halo_add_fuzz_target(NAME n SOURCES a.cpp LIBS lib... [CORPUS dir] [RUNS n])
# With clang and HALO_LIBFUZZER=ON it becomes a real libFuzzer binary (run it by hand: bin/fuzz_n corpus/).
# Otherwise it is linked with tests/fuzz/replay_main.cpp, which feeds it the corpus files and RUNS deterministic
# mutations of them, and is registered as a ctest so every build exercises it.
option(HALO_LIBFUZZER "Build fuzz targets with libFuzzer (needs clang)" OFF)
set(HALO_FUZZ_RUNS_PERCENT 100 CACHE STRING
  "Percent of each fuzz target's RUNS mutations its ctest replays (a sanitizer build, ~10x slower, may want fewer)")

function(halo_add_fuzz_target)
  cmake_parse_arguments(F "" "NAME;CORPUS;RUNS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_RUNS)
    set(F_RUNS 20000)
  endif()
  set(target fuzz_${F_NAME})
  if(HALO_LIBFUZZER)
    add_executable(${target} ${F_SOURCES})
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(${target} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
  endif()
  target_link_libraries(${target} PRIVATE ${F_LIBS})
  if(HALO_BUILD_TESTS AND NOT HALO_LIBFUZZER)
    math(EXPR runs "${F_RUNS} * ${HALO_FUZZ_RUNS_PERCENT} / 100")
    add_test(NAME fuzz.${F_NAME} COMMAND ${target} --runs ${runs} ${F_CORPUS})
    # The fuzz tests are the longest: a cost makes ctest start them first (until it has measured times), so the
    # short tests fill the other cores instead of one fuzz test running alone at the end.
    set_tests_properties(fuzz.${F_NAME} PROPERTIES LABELS fuzz COST ${runs})
  endif()
endfunction()
