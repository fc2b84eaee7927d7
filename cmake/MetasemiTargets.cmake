# metasemi_add_executable(<name> SOURCES ... [LIBS ...]): a program in build/bin linked to the
# library, reusing its precompiled torch header.
function(metasemi_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE metasemi::metasemi ${ARG_LIBS})
  metasemi_use_pch(${name})
endfunction()

function(metasemi_use_pch target)
  if(METASEMI_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM metasemi)
  endif()
endfunction()
