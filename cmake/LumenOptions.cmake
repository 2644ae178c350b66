# Build options shared by every target: warnings, sanitizers, ccache.
option(LUMEN_WERROR "Treat compiler warnings as errors (CI turns this on)" OFF)
option(LUMEN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(LUMEN_BUILD_TESTS "Build the test suites" ON)
option(LUMEN_FUZZ "Build libFuzzer binaries for the fuzz targets (needs clang)" OFF)
set(LUMEN_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE LUMEN_CUDA PROPERTY STRINGS AUTO ON OFF)

find_program(LUMEN_CCACHE ccache)
if(LUMEN_CCACHE)
    set(CMAKE_CXX_COMPILER_LAUNCHER "${LUMEN_CCACHE}")
    set(CMAKE_CUDA_COMPILER_LAUNCHER "${LUMEN_CCACHE}")
endif()

# Every Lumen target links this interface library for its warning and sanitizer flags, so
# third-party code (Qt's generated moc files excepted) is not held to them.
add_library(lumen_build_flags INTERFACE)
target_compile_options(lumen_build_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
        -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
        -Wformat=2 -Wno-missing-field-initializers>)
if(LUMEN_WERROR)
    target_compile_options(lumen_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>
        $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
endif()
if(LUMEN_FUZZ)
    # Instrument every library for coverage and memory errors, not only the fuzz targets.
    target_compile_options(lumen_build_flags INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer>)
    target_link_options(lumen_build_flags INTERFACE -fsanitize=address,undefined)
endif()
if(LUMEN_SANITIZE)
    target_compile_options(lumen_build_flags INTERFACE
        $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer
        -fno-sanitize-recover=undefined>)
    target_link_options(lumen_build_flags INTERFACE -fsanitize=address,undefined)
endif()
