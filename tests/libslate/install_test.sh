#!/usr/bin/env bash
# libslate as a user outside this tree gets it: `cmake --install` into a
# fresh prefix, then examples/components/counter.c and summer.cpp built
#   (a) with `pkg-config --cflags --libs slate` (shared), and with
#       `pkg-config --static --libs slate`, -lslate made -l:libslate.a (static);
#   (b) by a tiny CMake project with find_package(slate REQUIRED), linking
#       slate::slate and slate::slate_static.
# Each binary is run once outside a runtime: it must exit 2 saying it was
# "not started by a Clean Slate runtime". And bin/ has slate and slate-init.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
repo=$2
failures=0

cache_value() {  # cache_value NAME: a variable of BUILD_DIR's CMakeCache.txt
  sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n 1
}
is_on() {
  case "${1^^}" in ON | TRUE | YES | Y | 1) return 0 ;; *) return 1 ;; esac
}

if is_on "$(cache_value SLATE_FUZZ)"; then
  echo "SKIP: a SLATE_FUZZ build instruments libslate for libFuzzer; nothing to install"
  exit 77
fi
cc=$(cache_value CMAKE_C_COMPILER)
cxx=$(cache_value CMAKE_CXX_COMPILER)
generator=$(cache_value CMAKE_GENERATOR)
# The installed libraries were compiled with the build's sanitizers, so
# whatever links them needs the same runtime (ASan must come first).
sanitize=()
if is_on "$(cache_value SLATE_SANITIZE)"; then
  sanitize=("-fsanitize=address,undefined" -fno-sanitize-recover=all)
fi
for tool in "$cc" "$cxx" pkg-config cmake; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/slate-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
  echo "FAIL $1"
  failures=$((failures + 1))
}

# run NAME CMD...: runs a step quietly, printing its output only if it fails.
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"
    return 0
  fi
  fail "$name"
  echo "$out"
  return 1
}

# expect_not_started NAME BINARY: outside a runtime, exit 2 and say so.
expect_not_started() {
  local name=$1 binary=$2 out code
  out=$(env -u SLATE_COMPONENT -u SLATE_CHANNELS -u NOTIFY_SOCKET -u WATCHDOG_USEC \
    "$binary" 2>&1 </dev/null)
  code=$?
  if [ "$code" -ne 2 ]; then
    fail "$name runs: exit $code, want 2"
    echo "$out"
    return
  fi
  if ! grep -q "not started by a Clean Slate runtime" <<<"$out"; then
    fail "$name runs: output lacks 'not started by a Clean Slate runtime'"
    echo "$out"
    return
  fi
  echo "ok   $name runs: exit 2, not started by a Clean Slate runtime"
}

# uses_installed_so NAME BINARY: the shared build loads the installed libslate.so.
uses_installed_so() {
  command -v ldd >/dev/null || return 0
  local found
  found=$(ldd "$2" | grep 'libslate\.so')
  if [[ "$found" != *"$libdir/libslate.so"* ]]; then
    fail "$1 loads libslate.so from '$found', want $libdir"
  fi
}

# links_static NAME BINARY: the static build does not need libslate.so.
links_static() {
  command -v ldd >/dev/null || return 0
  if ldd "$2" | grep -q 'libslate\.so'; then
    fail "$1 loads libslate.so, want libslate.a linked in"
  fi
}

run "cmake --install into a fresh prefix" cmake --install "$build" --prefix "$prefix" || exit 1
# The runtime finds slate-init (pid = "private") next to itself.
for program in slate slate-init; do
  if [ -x "$prefix/bin/$program" ]; then
    echo "ok   $program installed in bin/"
  else
    fail "$program is not installed in $prefix/bin"
  fi
done

pc=$(find "$prefix" -path '*/pkgconfig/slate.pc' | head -n 1)
config=$(find "$prefix" -path '*/cmake/slate/slateConfig.cmake' | head -n 1)
[ -n "$pc" ] || fail "install has no pkgconfig/slate.pc"
[ -n "$config" ] || fail "install has no cmake/slate/slateConfig.cmake"
for header in slate/slate.h slate/slate.hpp; do
  [ -f "$prefix/include/$header" ] || fail "install has no include/$header"
done
[ "$failures" -eq 0 ] || exit 1
libdir=$(dirname "$(dirname "$pc")")  # lib or lib/<multiarch>, as GNUInstallDirs chose
for lib in libslate.so libslate.a; do
  [ -e "$libdir/$lib" ] || fail "install has no ${libdir#"$prefix"/}/$lib"
done
echo "ok   installed: include/slate, ${libdir#"$prefix"/}/{libslate.so,libslate.a,pkgconfig,cmake/slate}"

# (a) pkg-config
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pkg=(pkg-config)
pc_prefix=$(pkg-config --variable=prefix slate)
if [ "$pc_prefix" != "$prefix" ]; then
  # slate.pc holds the prefix the build was configured with
  # (CMAKE_INSTALL_PREFIX), not the one given to `cmake --install --prefix`.
  echo "note slate.pc says prefix=$pc_prefix; installed to $prefix: using --define-variable=prefix"
  pkg=(pkg-config --define-variable=prefix="$prefix")
fi
cflags=$("${pkg[@]}" --cflags slate) || fail "pkg-config --cflags slate"
libs=$("${pkg[@]}" --libs slate) || fail "pkg-config --libs slate"
pc_libdir=$("${pkg[@]}" --variable=libdir slate)
# Static: what libslate.a needs comes from Libs.private and Requires.private;
# -l:libslate.a picks the archive over libslate.so beside it.
static_libs=$("${pkg[@]}" --static --libs slate) || fail "pkg-config --static --libs slate"
static_libs=$(sed -E 's/(^| )-lslate( |$)/\1-l:libslate.a\2/' <<<"$static_libs")
[ "$pc_libdir" = "$libdir" ] || fail "slate.pc's libdir is $pc_libdir, the library is in $libdir"
mkdir -p "$work/pc"
# shellcheck disable=SC2086 # pkg-config output is a list of words
{
  run "pkg-config: counter.c, shared" "$cc" -Wall -Wextra -Wpedantic -Werror \
    "${sanitize[@]}" "$repo/examples/components/counter.c" -o "$work/pc/counter" \
    $cflags $libs -Wl,-rpath,"$pc_libdir" &&
    expect_not_started "pkg-config: counter (shared)" "$work/pc/counter" &&
    uses_installed_so "pkg-config: counter (shared)" "$work/pc/counter"
  run "pkg-config: summer.cpp, shared" "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror \
    "${sanitize[@]}" "$repo/examples/components/summer.cpp" -o "$work/pc/summer" \
    $cflags $libs -Wl,-rpath,"$pc_libdir" &&
    expect_not_started "pkg-config: summer (shared)" "$work/pc/summer" &&
    uses_installed_so "pkg-config: summer (shared)" "$work/pc/summer"
  run "pkg-config: counter.c, static" "$cc" -Wall -Wextra -Wpedantic -Werror \
    "${sanitize[@]}" "$repo/examples/components/counter.c" -o "$work/pc/counter-static" \
    $cflags $static_libs &&
    expect_not_started "pkg-config: counter (static)" "$work/pc/counter-static" &&
    links_static "pkg-config: counter (static)" "$work/pc/counter-static"
  run "pkg-config: summer.cpp, static" "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror \
    "${sanitize[@]}" "$repo/examples/components/summer.cpp" -o "$work/pc/summer-static" \
    $cflags $static_libs &&
    expect_not_started "pkg-config: summer (static)" "$work/pc/summer-static" &&
    links_static "pkg-config: summer (static)" "$work/pc/summer-static"
}

# (b) CMake: find_package(slate)
project=$work/cmake-project
mkdir -p "$project"
cat >"$project/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(slate_install_check LANGUAGES C CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(slate REQUIRED)
add_executable(counter $repo/examples/components/counter.c)
target_link_libraries(counter PRIVATE slate::slate)
add_executable(counter_static $repo/examples/components/counter.c)
target_link_libraries(counter_static PRIVATE slate::slate_static)
add_executable(summer $repo/examples/components/summer.cpp)
target_link_libraries(summer PRIVATE slate::slate)
add_executable(summer_static $repo/examples/components/summer.cpp)
target_link_libraries(summer_static PRIVATE slate::slate_static)
foreach(t counter counter_static summer summer_static)
  target_compile_options(\${t} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endforeach()
EOF
cmake_flags=()
if [ "${#sanitize[@]}" -gt 0 ]; then
  cmake_flags=(-DCMAKE_C_FLAGS="${sanitize[*]}" -DCMAKE_CXX_FLAGS="${sanitize[*]}"
    -DCMAKE_EXE_LINKER_FLAGS="${sanitize[*]}")
fi
if run "cmake: configure with find_package(slate)" cmake -S "$project" -B "$project/build" \
  ${generator:+-G "$generator"} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" "${cmake_flags[@]}" &&
  run "cmake: build against slate::slate and slate::slate_static" \
    cmake --build "$project/build"; then
  expect_not_started "cmake: counter (slate::slate)" "$project/build/counter"
  expect_not_started "cmake: counter (slate::slate_static)" "$project/build/counter_static"
  expect_not_started "cmake: summer (slate::slate)" "$project/build/summer"
  expect_not_started "cmake: summer (slate::slate_static)" "$project/build/summer_static"
  uses_installed_so "cmake: counter (slate::slate)" "$project/build/counter"
  uses_installed_so "cmake: summer (slate::slate)" "$project/build/summer"
  links_static "cmake: counter (slate::slate_static)" "$project/build/counter_static"
  links_static "cmake: summer (slate::slate_static)" "$project/build/summer_static"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
