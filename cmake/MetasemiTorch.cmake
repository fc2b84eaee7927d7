# LibTorch from Torch_DIR (an official archive, or the one inside a pip/conda PyTorch:
# `python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'`/Torch).
# TorchConfig.cmake looks its libraries up with find_library(... PATHS <its prefix>/lib), which
# searches the system paths first: on a machine that also has a system LibTorch (Debian's
# libtorch-dev) it would link those libraries with the other LibTorch's headers. The libraries
# and Caffe2 package of the LibTorch that Torch_DIR names are set here first, so that its own
# are used.
if(Torch_DIR AND EXISTS "${Torch_DIR}/TorchConfig.cmake")
  get_filename_component(_metasemi_torch_lib "${Torch_DIR}/../../../lib" ABSOLUTE)
  # Its Caffe2 package too, which TorchConfig finds with find_dependency(... PATHS), system first.
  if(EXISTS "${_metasemi_torch_lib}/libtorch.so" AND EXISTS "${Torch_DIR}/../Caffe2/Caffe2Config.cmake"
     AND NOT DEFINED CACHE{Caffe2_DIR})
    get_filename_component(_caffe2 "${Torch_DIR}/../Caffe2" ABSOLUTE)
    set(Caffe2_DIR "${_caffe2}" CACHE PATH "Caffe2 package of the LibTorch in Torch_DIR")
  endif()
  foreach(_name torch torch_cpu torch_cuda c10 c10_cuda)
    string(TOUPPER "${_name}" _upper)
    foreach(_var ${_name}_LIBRARY ${_upper}_LIBRARY)
      if(EXISTS "${_metasemi_torch_lib}/lib${_name}.so" AND NOT DEFINED CACHE{${_var}})
        set(${_var} "${_metasemi_torch_lib}/lib${_name}.so" CACHE FILEPATH "LibTorch library")
      endif()
    endforeach()
  endforeach()
endif()

# metasemi_prefer_system_fmt(<target>): LibTorch 2.x wheels bundle fmt headers of their own
# (fmt 12 in torch 2.15) in the include folder that `torch` puts on every compile line, while
# spdlog is built against the system's fmt. A folder holding only a link to the system's fmt
# headers goes first, so that the project and spdlog see the fmt they link. LibTorch's public
# API headers (torch/torch.h) do not include fmt.
function(metasemi_prefer_system_fmt target)
  foreach(_dir ${TORCH_INCLUDE_DIRS})
    if(EXISTS "${_dir}/fmt/format.h")
      get_target_property(_fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
      list(GET _fmt_include 0 _fmt_include)
      get_filename_component(_a "${_dir}" REALPATH)
      get_filename_component(_b "${_fmt_include}" REALPATH)
      if(_a STREQUAL _b)
        return()  # LibTorch's include folder is the system's (Debian): one fmt
      endif()
      set(_first ${CMAKE_BINARY_DIR}/generated/system-fmt)
      file(MAKE_DIRECTORY ${_first})
      file(CREATE_LINK ${_fmt_include}/fmt ${_first}/fmt SYMBOLIC)
      target_include_directories(${target} BEFORE PUBLIC ${_first})
      message(STATUS "metasemi: ${_dir}/fmt shadowed by the system fmt (${_fmt_include})")
      return()
    endif()
  endforeach()
endfunction()
