# metasemi_add_test(<name> SOURCES ... [LABELS ...] [RANKS n] [PROCESSORS n] [TIMEOUT s]
#                   [LIBS ...] [ENVIRONMENT ...] [RUN_SERIAL])
# One Boost.Test executable per test. RANKS > 1 launches it through FindMPI's MPIEXEC_EXECUTABLE
# with that many ranks and reserves as many ctest processors. Launcher settings a root user needs
# come from the environment (env/mpi-env.sh), not from here.
# The python with TensorBoard's reader, safetensors and torch that some tests check files with
# (env/test-venv.sh makes it; env/run-tests.sh passes it). Tests that need it fail without it.
set(_venv_python "$ENV{HOME}/.cache/metasemi-test-venv/bin/python")
if(NOT METASEMI_TEST_PYTHON AND EXISTS "${_venv_python}")
  set(_default_python "${_venv_python}")
endif()
set(METASEMI_TEST_PYTHON "${_default_python}" CACHE FILEPATH
    "Python with tensorboard, safetensors and torch for the tests' cross-checks")
set(METASEMI_TEST_ENV
  "METASEMI_TEST_PYTHON=${METASEMI_TEST_PYTHON}"
  "METASEMI_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "METASEMI_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  "METASEMI_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp"
  "METASEMI_FASHION_MNIST=/usr/share/datasets/fashion-mnist"
  "OMP_NUM_THREADS=1")

add_library(metasemi_test_support STATIC ${PROJECT_SOURCE_DIR}/tests/support/TestSupport.cpp
                                         ${PROJECT_SOURCE_DIR}/tests/support/TinyShards.cpp
                                         ${PROJECT_SOURCE_DIR}/tests/support/JpegTree.cpp)
target_include_directories(metasemi_test_support PUBLIC ${PROJECT_SOURCE_DIR}/tests)
# Tests may use any part of the project, the preprocessing and postprocessing libraries included.
target_link_libraries(metasemi_test_support PUBLIC metasemi::metasemi metasemi_prep metasemi::post
                                                   Boost::unit_test_framework)
target_compile_definitions(metasemi_test_support PUBLIC BOOST_TEST_DYN_LINK)
if(METASEMI_USE_PCH)
  target_precompile_headers(metasemi_test_support PRIVATE <torch/torch.h> <boost/test/unit_test.hpp>)
  # This file defines BOOST_TEST_MODULE (main) before including Boost.Test, so not after the PCH.
  set_source_files_properties(${PROJECT_SOURCE_DIR}/tests/support/TestSupport.cpp
                              PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
endif()

function(metasemi_add_test name)
  cmake_parse_arguments(ARG "RUN_SERIAL" "RANKS;TIMEOUT;PROCESSORS" "SOURCES;LABELS;LIBS;ENVIRONMENT" ${ARGN})
  if(NOT ARG_RANKS)
    set(ARG_RANKS 1)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_PROCESSORS)
    set(ARG_PROCESSORS ${ARG_RANKS})
  endif()
  add_executable(${name} ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE metasemi_test_support ${ARG_LIBS})
  if(METASEMI_USE_PCH)
    target_precompile_headers(${name} REUSE_FROM metasemi_test_support)
  endif()
  if(ARG_RANKS GREATER 1)
    add_test(NAME ${name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ARG_RANKS} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS})
  else()
    add_test(NAME ${name} COMMAND ${name})
  endif()
  set_tests_properties(${name} PROPERTIES
    LABELS "${ARG_LABELS}"
    PROCESSORS ${ARG_PROCESSORS}
    TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "${METASEMI_TEST_ENV};${ARG_ENVIRONMENT}")
  if(ARG_RUN_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

# Every tests/<label>/test_*.cpp becomes a test with that label (one file per unit).
function(metasemi_add_tests_in_folder label)
  cmake_parse_arguments(ARG "" "RANKS;TIMEOUT;PROCESSORS" "" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_*.cpp)
  foreach(src ${sources})
    get_filename_component(stem ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "" stem ${stem})
    set(extra)
    if(ARG_RANKS)
      list(APPEND extra RANKS ${ARG_RANKS})
    endif()
    if(ARG_TIMEOUT)
      list(APPEND extra TIMEOUT ${ARG_TIMEOUT})
    endif()
    if(ARG_PROCESSORS)
      list(APPEND extra PROCESSORS ${ARG_PROCESSORS})
    endif()
    metasemi_add_test(${label}_${stem} SOURCES ${src} LABELS ${label} ${extra})
  endforeach()
endfunction()
