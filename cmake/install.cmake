# Install rules: headers, the libraries, a CMake package (find_package(libim) with components)
# and pkg-config files. Everything lands under the install prefix and is relocatable: the CMake
# files and the .pc files find the prefix from their own location.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(IM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/libim)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/im DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# One export set per component, so a host asking for the engine alone needs none of the
# dependencies of the others.
set(IM_COMPONENT_TARGETS im im_leveldb ${IM_REDIS_TARGET})
if(TARGET im_conformance)
  list(APPEND IM_COMPONENT_TARGETS im_conformance)
endif()
foreach(target ${IM_COMPONENT_TARGETS})
  get_target_property(export_name ${target} EXPORT_NAME)
  if(NOT export_name)
    set(export_name ${target})
  endif()
  install(TARGETS ${target} EXPORT libim_${export_name}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT libim_${export_name} NAMESPACE libim:: DESTINATION ${IM_CMAKE_DIR}
    FILE libim-${export_name}-targets.cmake)
endforeach()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/libimConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/libimConfig.cmake INSTALL_DESTINATION ${IM_CMAKE_DIR})
# 0.x: a minor version may change the API, so 0.2 accepts 0.2.y only.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/libimConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/libimConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/libimConfigVersion.cmake
        DESTINATION ${IM_CMAKE_DIR})

# pkg-config: libim (the engine) and libim-leveldb. A static library lists what it links in
# Requires (so `pkg-config --libs libim` links); a shared one in Requires.private.
file(RELATIVE_PATH IM_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
set(IM_PC_LIBDIR ${CMAKE_INSTALL_LIBDIR})
set(IM_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
function(im_pkg_config name description lib requires extra_libs)
  if(BUILD_SHARED_LIBS)
    set(IM_PC_REQUIRES "")
    set(IM_PC_REQUIRES_PRIVATE "${requires}")
    set(IM_PC_LIBS "-l${lib}")
    set(IM_PC_LIBS_PRIVATE "${extra_libs}")
  else()
    set(IM_PC_REQUIRES "${requires}")
    set(IM_PC_REQUIRES_PRIVATE "")
    set(IM_PC_LIBS "-l${lib} ${extra_libs}")
    set(IM_PC_LIBS_PRIVATE "")
  endif()
  set(IM_PC_NAME ${name})
  set(IM_PC_DESCRIPTION "${description}")
  configure_file(${CMAKE_CURRENT_LIST_DIR}/libim.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
im_pkg_config(libim "Embeddable C++17 instant-messaging engine" im
  "libsodium fmt spdlog prometheus-cpp-core libutf8proc" "-pthread")
# Debian's leveldb has no .pc file; its library needs snappy.
im_pkg_config(libim-leveldb "libim's LevelDB backends" im_leveldb "libim libsodium fmt snappy"
  "-lleveldb")
if(IM_WITH_REDIS)
  im_pkg_config(libim-redis "libim's Redis backends" im_redis "libim libsodium fmt hiredis" "")
endif()

if(TARGET imd)
  install(TARGETS imd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
