# Finds every build dependency at configure time. Each check that fails adds a
# line naming the Debian bookworm package that provides what is missing; after
# all checks, configure stops with the whole list (never an error deep in the
# build). scripts/install-deps.sh installs them all.

set(KM_MISSING "")

# Adds one line to the list (a macro, so it appends in the caller's scope).
macro(km_missing what package)
  string(APPEND KM_MISSING "\n  ${what}: apt-get install ${package}")
endmacro()

# A library through pkg-config (defines PkgConfig::<var>) and the header the
# code includes from it, looked up in the library's include directories.
function(km_require_library var module header package)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${var}_FOUND)
    km_missing("library ${module} (pkg-config)" ${package})
  else()
    string(MAKE_C_IDENTIFIER "KM_HEADER_${header}" found)
    find_path(${found} ${header} HINTS ${${var}_INCLUDE_DIRS})
    if(NOT ${found})
      km_missing("header <${header}>" ${package})
    endif()
  endif()
  set(KM_MISSING "${KM_MISSING}" PARENT_SCOPE)
endfunction()

# A program the build runs; its path ends up in <var>.
function(km_require_program var program package)
  find_program(${var} ${program})
  if(NOT ${var})
    km_missing("program ${program}" ${package})
  endif()
  set(KM_MISSING "${KM_MISSING}" PARENT_SCOPE)
endfunction()

# A .proto file our .proto files import (found in the compiler's include dir).
function(km_require_proto_import path package)
  string(MAKE_C_IDENTIFIER "KM_PROTO_${path}" var)
  find_file(${var} ${path} PATHS /usr/include /usr/local/include NO_DEFAULT_PATH)
  if(NOT ${var})
    km_missing("protobuf import ${path}" ${package})
  endif()
  set(KM_MISSING "${KM_MISSING}" PARENT_SCOPE)
endfunction()

find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "Missing dependency:\n  program pkg-config: apt-get install pkg-config\n"
                      "(scripts/install-deps.sh installs every package this project needs)")
endif()
find_package(Threads REQUIRED)

km_require_library(GRPC grpc grpc/grpc.h libgrpc-dev)
km_require_library(PROTOBUFC libprotobuf-c protobuf-c/protobuf-c.h libprotobuf-c-dev)
km_require_library(CURL libcurl curl/curl.h libcurl4-openssl-dev)
km_require_library(JANSSON jansson jansson.h libjansson-dev)
km_require_library(LIBCRYPTO libcrypto openssl/evp.h libssl-dev)

km_require_program(PROTOC_C protoc-c protobuf-c-compiler)
km_require_program(PROTOC protoc protobuf-compiler)
km_require_proto_import(google/protobuf/empty.proto libprotobuf-dev)

if(BUILD_TESTING)
  km_require_library(CMOCKA cmocka cmocka.h libcmocka-dev)
endif()

if(FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    km_missing("the clang compiler for FUZZ=ON (configure with -DCMAKE_C_COMPILER=clang)" clang)
  else()
    include(CheckCSourceCompiles)
    set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
    check_c_source_compiles(
      "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
      KM_HAVE_LIBFUZZER)
    unset(CMAKE_REQUIRED_FLAGS)
    if(NOT KM_HAVE_LIBFUZZER)
      km_missing("libFuzzer runtime (clang -fsanitize=fuzzer)" libclang-rt-14-dev)
    endif()
  endif()
endif()

if(KM_MISSING)
  message(FATAL_ERROR "Missing build dependencies:${KM_MISSING}\n"
                      "(scripts/install-deps.sh installs every package this project needs)")
endif()
