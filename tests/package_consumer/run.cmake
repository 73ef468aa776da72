# cmake -P script behind the ctest tests package_consumer / subdir_consumer.
#
# Inputs (-D): MODE (package|subdir), CORIO_SOURCE_DIR, CORIO_BINARY_DIR,
# CONSUMER_SOURCE_DIR, WORK_DIR, CONFIG, GENERATOR, MAKE_PROGRAM, CXX,
# CXX_FLAGS, WARNINGS_AS_ERRORS.
#
# package: cmake --install <corio build> --prefix <WORK_DIR>/prefix, then
#          configure the consumer with CMAKE_PREFIX_PATH=<prefix>.
# subdir:  configure the consumer with CORIO_SOURCE_DIR (add_subdirectory).
# Both then build the consumer and run it; any failure fails the test.
cmake_minimum_required(VERSION 3.25)

foreach(var MODE CORIO_SOURCE_DIR CORIO_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  message(STATUS "[${MODE}_consumer] ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}_consumer] ${what} failed (${rc})")
  endif()
endfunction()

set(build_dir "${WORK_DIR}/${MODE}-build")
file(REMOVE_RECURSE "${build_dir}")

set(configure_args
  -S "${CONSUMER_SOURCE_DIR}" -B "${build_dir}"
  -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCORIO_CONSUME=${MODE}"
  "-DCONSUMER_WARNINGS_AS_ERRORS=${WARNINGS_AS_ERRORS}")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
set(build_config "${CONFIG}")
if(build_config STREQUAL "")
  set(build_config Release)
endif()
list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${build_config}")

if(MODE STREQUAL "package")
  set(prefix "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${prefix}")
  run_step(install "${CMAKE_COMMAND}" --install "${CORIO_BINARY_DIR}"
    --prefix "${prefix}" --config "${build_config}")
  # Only the installed package may be found: no package registry, no source tree.
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
elseif(MODE STREQUAL "subdir")
  list(APPEND configure_args "-DCORIO_SOURCE_DIR=${CORIO_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run.cmake: MODE must be package or subdir")
endif()

run_step(configure "${CMAKE_COMMAND}" ${configure_args})
run_step(build "${CMAKE_COMMAND}" --build "${build_dir}" --config "${build_config}")

find_program(consumer_exe consumer
  PATHS "${build_dir}" "${build_dir}/${build_config}" NO_DEFAULT_PATH REQUIRED)
run_step(run "${consumer_exe}")
message(STATUS "[${MODE}_consumer] OK")
