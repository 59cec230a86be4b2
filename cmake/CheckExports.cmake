# cmake -DNM=<nm> -DLIB=<library.so> -DKIND=api|preload -P CheckExports.cmake
#
# Fails when the library's dynamic symbol table defines a symbol its version
# script should have kept local, or lacks the symbols it exists to export.
#   api:     only execmem_* and C++ symbols of namespace execmem
#   preload: only execmem_*, the malloc family and operator new/delete
cmake_minimum_required(VERSION 3.25)
foreach(var NM LIB KIND)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "CheckExports.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT KIND MATCHES "^(api|preload)$")
  message(FATAL_ERROR "CheckExports.cmake: KIND='${KIND}': use api or preload")
endif()
if(NOT EXISTS "${LIB}")
  message(FATAL_ERROR "CheckExports.cmake: ${LIB} does not exist (build it first)")
endif()

execute_process(COMMAND "${NM}" -D --defined-only "${LIB}"
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${LIB} failed (${rc}): ${err}")
endif()

# Mangled C++ names of namespace execmem: functions/data (_ZN7execmem...,
# _ZNK7execmem... for const members), vtables, VTTs, typeinfo and names.
set(api_re "^(execmem_.*|_ZN(K|V|KV)?7execmem.*|_ZT[VTIS]N7execmem.*|_ZTh.*N7execmem.*|_ZTv.*N7execmem.*)$")
set(preload_re "^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|cfree|malloc_usable_size|free_sized|free_aligned_sized|malloc_trim|mallinfo2?|malloc_stats|mallopt|__libc_.*|__posix_memalign|_Znw.*|_Zna.*|_Zdl.*|_Zda.*)$")

string(REPLACE "\n" ";" lines "${out}")
set(bad "")
set(names "")
foreach(line IN LISTS lines)
  # "<address> <type> <name>[@version]"
  if(NOT line MATCHES "^[0-9a-fA-F]+ +[A-Za-z] +([^ @]+)")
    continue()
  endif()
  set(name "${CMAKE_MATCH_1}")
  list(APPEND names "${name}")
  if(KIND STREQUAL "api" AND name MATCHES "${api_re}")
    continue()
  endif()
  if(KIND STREQUAL "preload" AND name MATCHES "^execmem_|${preload_re}")
    continue()
  endif()
  list(APPEND bad "${name}")
endforeach()

if(bad)
  list(JOIN bad "\n  " bad_text)
  message(FATAL_ERROR "${LIB} exports symbols outside its version script's contract:\n  ${bad_text}")
endif()

set(required execmem_malloc execmem_free)
if(KIND STREQUAL "preload")
  list(APPEND required malloc free calloc realloc posix_memalign aligned_alloc _Znwm _ZdlPv)
endif()
foreach(sym IN LISTS required)
  if(NOT sym IN_LIST names)
    message(FATAL_ERROR "${LIB} does not export ${sym}")
  endif()
endforeach()
list(LENGTH names n)
message(STATUS "${LIB}: ${n} exported symbols, all within the contract")
