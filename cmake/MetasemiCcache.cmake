# ccache as compiler launcher. PCH users need the sloppiness below, otherwise every
# TU that uses the precompiled torch header misses the cache.
if(METASEMI_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(METASEMI_CCACHE ccache)
  if(METASEMI_CCACHE)
    set(_launcher env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
                  ${METASEMI_CCACHE})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
    message(STATUS "metasemi: ccache ${METASEMI_CCACHE}")
  endif()
endif()
