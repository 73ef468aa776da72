# Dependency lookup for corio. Included from the top-level CMakeLists.txt.
#
# Provides
#   corio::asio        INTERFACE IMPORTED GLOBAL target carrying Asio's include
#                      directory (standalone Asio; header-only; Asio defines
#                      ASIO_STANDALONE itself when Boost is not enabled).
#   Threads::Threads
#   fmt::fmt           when tests, examples or benchmarks are built
#   CORIO_CATCH2_MAJOR 2 or 3, and the Catch2::Catch2 (v2) or
#                      Catch2::Catch2WithMain (v3) target, when tests are built
#
# Installed packages are preferred (Debian: libasio-dev, libfmt-dev, catch2);
# FetchContent is the fallback for machines without them (CORIO_FETCH_DEPS).
include_guard(GLOBAL)
include(FetchContent)

find_package(Threads REQUIRED)

set(CORIO_ASIO_MIN_VERSION 102200)   # Asio 1.22.0, as ASIO_VERSION spells it

function(_corio_check_asio_version include_dir)
  file(STRINGS "${include_dir}/asio/version.hpp" _line REGEX "^#define ASIO_VERSION [0-9]+")
  if(_line MATCHES "ASIO_VERSION ([0-9]+)")
    set(v "${CMAKE_MATCH_1}")
    math(EXPR major "${v} / 100000")
    math(EXPR minor "${v} / 100 % 1000")
    math(EXPR patch "${v} % 100")
    set(CORIO_ASIO_VERSION "${major}.${minor}.${patch}" PARENT_SCOPE)
    if(v LESS CORIO_ASIO_MIN_VERSION)
      message(FATAL_ERROR "corio needs Asio >= 1.22; ${include_dir} has ${major}.${minor}.${patch}")
    endif()
  endif()
endfunction()

# ------------------------------------------------------------------- Asio ---
# CORIO_ASIO_ORIGIN: target | system | fetched (recorded for the package config)
if(TARGET corio::asio)
  set(CORIO_ASIO_ORIGIN target)
elseif(TARGET asio::asio)
  # The parent project already provides Asio (e.g. vcpkg's asio::asio).
  add_library(corio::asio INTERFACE IMPORTED GLOBAL)
  set_target_properties(corio::asio PROPERTIES INTERFACE_LINK_LIBRARIES asio::asio)
  set(CORIO_ASIO_ORIGIN target)
  message(STATUS "corio: Asio from the existing target asio::asio")
else()
  find_path(CORIO_ASIO_INCLUDE_DIR asio.hpp
    HINTS ${ASIO_ROOT} ENV ASIO_ROOT
    PATH_SUFFIXES include asio/include
    DOC "Directory containing standalone Asio's asio.hpp")
  if(CORIO_ASIO_INCLUDE_DIR)
    set(CORIO_ASIO_ORIGIN system)
    set(_corio_asio_dir "${CORIO_ASIO_INCLUDE_DIR}")
  elseif(CORIO_FETCH_DEPS)
    set(CORIO_ASIO_ORIGIN fetched)
    message(STATUS "corio: asio.hpp not found, fetching Asio 1.22.1")
    FetchContent_Declare(corio_asio
      URL https://github.com/chriskohlhoff/asio/archive/refs/tags/asio-1-22-1.tar.gz
      DOWNLOAD_EXTRACT_TIMESTAMP TRUE
      SOURCE_SUBDIR none)   # no CMake project there: just download
    FetchContent_MakeAvailable(corio_asio)
    set(_corio_asio_dir "${corio_asio_SOURCE_DIR}/asio/include")
  else()
    message(FATAL_ERROR
      "corio: standalone Asio (asio.hpp) not found. Install it (Debian/Ubuntu: "
      "apt-get install libasio-dev), pass -DCORIO_ASIO_INCLUDE_DIR=<dir>, or "
      "configure with -DCORIO_FETCH_DEPS=ON.")
  endif()
  _corio_check_asio_version("${_corio_asio_dir}")
  add_library(corio::asio INTERFACE IMPORTED GLOBAL)
  set_target_properties(corio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_corio_asio_dir}")
  message(STATUS "corio: Asio ${CORIO_ASIO_VERSION} (${CORIO_ASIO_ORIGIN}) at ${_corio_asio_dir}")
  unset(_corio_asio_dir)
endif()

# -------------------------------------------------------------------- fmt ---
# Only corio's own programs need it (examples, benchmarks, debug.hpp's test);
# the core headers never include fmt.
if(CORIO_BUILD_TESTS OR CORIO_BUILD_EXAMPLES OR CORIO_BUILD_BENCH)
  if(NOT TARGET fmt::fmt)
    find_package(fmt QUIET)
  endif()
  if(NOT TARGET fmt::fmt)
    if(NOT CORIO_FETCH_DEPS)
      message(FATAL_ERROR "corio: fmt not found (Debian: apt-get install libfmt-dev)")
    endif()
    message(STATUS "corio: fmt not found, fetching fmt 9.1.0")
    set(FMT_INSTALL OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(fmt
      URL https://github.com/fmtlib/fmt/archive/refs/tags/9.1.0.tar.gz
      DOWNLOAD_EXTRACT_TIMESTAMP TRUE)
    FetchContent_MakeAvailable(fmt)
  endif()
endif()

# ----------------------------------------------------------------- Catch2 ---
if(CORIO_BUILD_TESTS)
  find_package(Catch2 3 QUIET)
  if(Catch2_FOUND)
    set(CORIO_CATCH2_MAJOR 3)
  else()
    find_package(Catch2 2 QUIET)
    if(Catch2_FOUND)
      set(CORIO_CATCH2_MAJOR 2)
    elseif(CORIO_FETCH_DEPS)
      message(STATUS "corio: Catch2 not found, fetching Catch2 v3.4.0")
      FetchContent_Declare(Catch2
        URL https://github.com/catchorg/Catch2/archive/refs/tags/v3.4.0.tar.gz
        DOWNLOAD_EXTRACT_TIMESTAMP TRUE)
      FetchContent_MakeAvailable(Catch2)
      set(CORIO_CATCH2_MAJOR 3)
    else()
      message(FATAL_ERROR "corio: Catch2 not found (Debian: apt-get install catch2)")
    endif()
  endif()
  message(STATUS "corio: Catch2 ${Catch2_VERSION} (v${CORIO_CATCH2_MAJOR} API)")
endif()
