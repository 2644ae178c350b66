# Finds OpenCV's core, imgproc and imgcodecs from Debian's per-module -dev packages
# (libopencv-{core,imgproc,imgcodecs}-dev), which ship headers and libraries but not
# OpenCVConfig.cmake (that comes with the much larger libopencv-dev). Defines
# LumenOpenCV::opencv. Uses OpenCV's own CMake config when it is installed.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
if(OpenCV_FOUND)
    add_library(LumenOpenCV::opencv INTERFACE IMPORTED)
    target_link_libraries(LumenOpenCV::opencv INTERFACE ${OpenCV_LIBS})
    target_include_directories(LumenOpenCV::opencv INTERFACE ${OpenCV_INCLUDE_DIRS})
    set(LumenOpenCV_FOUND TRUE)
    return()
endif()

find_path(LumenOpenCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
find_path(LumenOpenCV_CONFIG_DIR opencv2/cvconfig.h
    PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} PATH_SUFFIXES opencv4)
set(_lumen_cv_libs)
foreach(_m core imgproc imgcodecs)
    find_library(LumenOpenCV_${_m}_LIBRARY opencv_${_m})
    list(APPEND _lumen_cv_libs LumenOpenCV_${_m}_LIBRARY)
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LumenOpenCV
    REQUIRED_VARS LumenOpenCV_INCLUDE_DIR ${_lumen_cv_libs})
if(LumenOpenCV_FOUND AND NOT TARGET LumenOpenCV::opencv)
    add_library(LumenOpenCV::opencv INTERFACE IMPORTED)
    target_include_directories(LumenOpenCV::opencv SYSTEM INTERFACE ${LumenOpenCV_INCLUDE_DIR})
    if(LumenOpenCV_CONFIG_DIR)
        target_include_directories(LumenOpenCV::opencv SYSTEM INTERFACE ${LumenOpenCV_CONFIG_DIR})
    endif()
    target_link_libraries(LumenOpenCV::opencv INTERFACE
        ${LumenOpenCV_imgcodecs_LIBRARY} ${LumenOpenCV_imgproc_LIBRARY} ${LumenOpenCV_core_LIBRARY})
endif()
