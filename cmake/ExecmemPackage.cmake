# The package: what `cmake --install` (and `make install PREFIX=...`) puts
# under the prefix, for other projects to use execmem from.
#
#   lib/libexecmem.so.0.1.0, libexecmem.so.0 (SONAME), libexecmem.so
#   lib/libexecmem.a, lib/libexecmem_preload.so
#   include/execmem.h, execmem.hpp, execmem_lock.hpp, execmem_version.h
#   lib/cmake/execmem/execmemConfig.cmake, execmemConfigVersion.cmake,
#                      execmemTargets*.cmake        find_package(execmem)
#   lib/pkgconfig/execmem.pc                        pkg-config execmem
#
# Imported targets: execmem::execmem (shared), execmem::execmem_static and
# execmem::preload.
# Everything is relocatable: the files find the prefix from where they are.
# Included once from the top-level CMakeLists.txt, after the libraries.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(EXECMEM_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/execmem")

set_target_properties(execmem_static PROPERTIES EXPORT_NAME execmem_static)
install(TARGETS execmem execmem_static EXPORT execmemTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET execmem_preload)
  set_target_properties(execmem_preload PROPERTIES EXPORT_NAME preload)
  install(TARGETS execmem_preload EXPORT execmemTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(FILES ${EXECMEM_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT execmemTargets NAMESPACE execmem:: DESTINATION "${EXECMEM_CMAKE_DIR}")
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/execmemConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/package/execmemConfig.cmake"
  INSTALL_DESTINATION "${EXECMEM_CMAKE_DIR}")
# The SONAME changes with the major version, so only the same major is compatible.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/package/execmemConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/package/execmemConfig.cmake"
              "${PROJECT_BINARY_DIR}/package/execmemConfigVersion.cmake"
        DESTINATION "${EXECMEM_CMAKE_DIR}")

# ---- execmem.pc ---------------------------------------------------------------
# prefix is found from the .pc file's own folder (${pcfiledir}, which pkg-config
# and pkgconf both set), so the file is right under any --prefix.
set(EXECMEM_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "execmem: execmem.pc needs CMAKE_INSTALL_LIBDIR and "
                      "CMAKE_INSTALL_INCLUDEDIR relative to the prefix")
endif()
file(RELATIVE_PATH EXECMEM_PC_TO_PREFIX "/root/${EXECMEM_PC_DIR}" "/root")
string(REGEX REPLACE "/$" "" EXECMEM_PC_TO_PREFIX "${EXECMEM_PC_TO_PREFIX}")
configure_file("${PROJECT_SOURCE_DIR}/cmake/execmem.pc.in"
               "${PROJECT_BINARY_DIR}/package/execmem.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/package/execmem.pc" DESTINATION "${EXECMEM_PC_DIR}")
