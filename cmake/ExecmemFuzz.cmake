# The libFuzzer build (make fuzz): EXECMEM_FUZZ=ON builds tests/fuzz's
# targets as libFuzzer binaries. It needs clang, and the libraries compiled
# with coverage instrumentation and the sanitizers, which the Makefile passes:
#   CC=clang-14 CXX=clang++-14 -DEXECMEM_SANITIZE=address
#   -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link
# Without it (every other build) the targets are corpus replays run by CTest.
include_guard(GLOBAL)
option(EXECMEM_FUZZ "Build tests/fuzz as libFuzzer binaries (clang only)" OFF)
if(EXECMEM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "EXECMEM_FUZZ=ON needs clang (libFuzzer); ${CMAKE_CXX_COMPILER_ID} found")
  endif()
  if(NOT CMAKE_CXX_FLAGS MATCHES "fuzzer-no-link")
    message(FATAL_ERROR "EXECMEM_FUZZ=ON: build the libraries with -fsanitize=fuzzer-no-link "
                        "(CMAKE_CXX_FLAGS), as `make fuzz` does")
  endif()
endif()
