# metasemi_add_executable(<name> SOURCES ... [LIBS ...] [NO_TORCH]): a program in build/bin linked to
# the library, reusing its precompiled torch header. NO_TORCH: linked to LIBS alone and compiled
# without the torch header, for tools that need no tensors and should not pay LibTorch's loading
# time at every start; LIBS then names torch-free targets only (metasemi::base and the libraries
# built on it).
function(metasemi_add_executable name)
  cmake_parse_arguments(ARG "NO_TORCH" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  if(ARG_NO_TORCH)
    target_link_libraries(${name} PRIVATE ${ARG_LIBS})
    return()
  endif()
  target_link_libraries(${name} PRIVATE metasemi::metasemi ${ARG_LIBS})
  metasemi_use_pch(${name})
endfunction()

function(metasemi_use_pch target)
  if(METASEMI_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM metasemi)
  endif()
endfunction()
