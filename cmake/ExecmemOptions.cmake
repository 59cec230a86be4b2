# Compiler settings for every execmem target, and the helpers that give the
# libraries their extra flags. Included once from the top-level CMakeLists.txt.
include_guard(GLOBAL)
include(CheckCXXCompilerFlag)

option(EXECMEM_WERROR "Treat compiler warnings as errors" ON)
option(EXECMEM_NO_PLT "Compile with -fno-plt (cross-library calls through the GOT)" OFF)
set(EXECMEM_SANITIZE "" CACHE STRING "Sanitizer build: empty, address (ASan+UBSan) or thread (TSan)")
set_property(CACHE EXECMEM_SANITIZE PROPERTY STRINGS "" address thread)

# ---- build type ------------------------------------------------------------------
# Optimised with debug info unless asked otherwise: benchmarks and stack traces
# both need it. Sanitizer builds default to Debug so that asserts stay on.
get_property(_execmem_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(NOT _execmem_multi_config AND NOT CMAKE_BUILD_TYPE)
  if(EXECMEM_SANITIZE)
    set(CMAKE_BUILD_TYPE Debug CACHE STRING "Build type" FORCE)
  else()
    set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
  endif()
endif()
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O2 -g -DNDEBUG" CACHE STRING "" FORCE)
set(CMAKE_C_FLAGS_RELWITHDEBINFO "-O2 -g -DNDEBUG" CACHE STRING "" FORCE)
# -O1 keeps sanitizer and gdb runs usable without hiding bugs that only
# appear once the optimiser inlines.
set(CMAKE_CXX_FLAGS_DEBUG "-O1 -g" CACHE STRING "" FORCE)
set(CMAKE_C_FLAGS_DEBUG "-O1 -g" CACHE STRING "" FORCE)

# ---- languages ------------------------------------------------------------------
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
# gnu11: C tests call posix_memalign, memalign and malloc_usable_size, which
# glibc declares only with the GNU/POSIX feature macros that -std=c11 turns off
# (g++ defines _GNU_SOURCE itself, so C++ needs no such help).
set(CMAKE_C_EXTENSIONS ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

add_compile_options(-Wall -Wextra)
if(EXECMEM_WERROR)
  add_compile_options(-Werror)
endif()

# ---- sanitizers ------------------------------------------------------------------
set(EXECMEM_SANITIZED OFF)
if(EXECMEM_SANITIZE STREQUAL "address")
  set(_execmem_san -fsanitize=address,undefined -fno-omit-frame-pointer
                   -fno-sanitize-recover=undefined)
elseif(EXECMEM_SANITIZE STREQUAL "thread")
  set(_execmem_san -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT EXECMEM_SANITIZE STREQUAL "")
  message(FATAL_ERROR
    "EXECMEM_SANITIZE='${EXECMEM_SANITIZE}' is not accepted: use '' (none), 'address' or 'thread'")
endif()
if(DEFINED _execmem_san)
  add_compile_options(${_execmem_san})
  add_link_options(${_execmem_san})
  set(EXECMEM_SANITIZED ON)
  message(STATUS "execmem: sanitizer ${EXECMEM_SANITIZE}: ${_execmem_san}")
endif()

# ---- CTest -------------------------------------------------------------------------
# Default per-test timeout (ctest reads TimeOut from DartConfiguration.tcl);
# CTEST_TARGETS_ADDED keeps include(CTest) from adding its dashboard targets.
set(DART_TESTING_TIMEOUT 600 CACHE STRING "Default CTest timeout in seconds")
set_property(GLOBAL PROPERTY CTEST_TARGETS_ADDED 1)
include(CTest)

# ---- per-target helpers ------------------------------------------------------------

# Flags for code that ends up inside libexecmem*.so: nothing is exported unless
# marked, thread-locals are reached without __tls_get_addr (the allocator's
# fast path reads them on every call, and the preload library is always
# loaded at startup), and calls inside the library bind locally.
function(execmem_library_flags target)
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${target} PRIVATE -ftls-model=initial-exec
                                           -fno-semantic-interposition)
  if(EXECMEM_NO_PLT)
    target_compile_options(${target} PRIVATE -fno-plt)
  endif()
endfunction()

# Link options for a shared library with a version script: only what the map
# lists is exported, every symbol is resolved at load time (no lazy binding
# inside malloc) and undefined references are link errors.
function(execmem_harden_shared target map)
  target_link_options(${target} PRIVATE
    "LINKER:--version-script=${map}"
    "LINKER:-z,now" "LINKER:-z,relro" "LINKER:--as-needed"
    # Never unloaded by dlclose(): the pool's background purger thread runs
    # the library's code for the rest of the process.
    "LINKER:-z,nodelete")
  if(NOT EXECMEM_SANITIZED)
    target_link_options(${target} PRIVATE "LINKER:-z,defs")
  endif()
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${map}")
endfunction()
