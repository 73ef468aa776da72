# shellcheck shell=bash
# Shared setup of corio's scripts (scripts/*.sh, bench/run.sh, bench/http/run.sh).
# Sourced, not run:  source "$root/scripts/lib.sh"
#
# Sets
#   corio_root   the repository's root (absolute)
#   generator    array: (-G Ninja) when ninja is installed, else empty
#                (Makefiles); empty too when $CMAKE_GENERATOR is set (cmake
#                then uses that)
# Functions
#   corio_deps            runs scripts/deps.sh, with --clang when $CXX is a clang
#   corio_jobs            prints $JOBS, or the online cores capped at 2 (the
#                         project's machines have 2 cores)
#   corio_fresh_build_dir DIR CXX [cache-only]
#                         wipes DIR when its CMakeCache.txt was made with another
#                         generator or another C++ compiler (cmake cannot switch
#                         either in place); with cache-only, removes only the
#                         cache and CMakeFiles/ (other outputs in DIR stay)
#   corio_extra_args      fills the array `extra` from $CMAKE_ARGS (word-split)

corio_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

generator=()
if [[ -z "${CMAKE_GENERATOR:-}" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
corio_generator_name=${CMAKE_GENERATOR:-${generator[1]:-Unix Makefiles}}

corio_deps() {
  local args=()
  [[ "${CXX:-g++}" == *clang* ]] && args+=(--clang)
  "$corio_root/scripts/deps.sh" "${args[@]}"
}

corio_jobs() {
  if [[ -n "${JOBS:-}" ]]; then
    echo "$JOBS"
    return
  fi
  local jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  (( jobs > 2 )) && jobs=2
  echo "$jobs"
}

corio_fresh_build_dir() {
  local dir=$1 cxx=$2 mode=${3:-} cache="$1/CMakeCache.txt" cxx_path
  [[ -f "$cache" ]] || return 0
  cxx_path=$(command -v "$cxx" || echo "$cxx")
  if ! grep -qx "CMAKE_GENERATOR:INTERNAL=$corio_generator_name" "$cache" ||
     ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=\(${cxx}\|${cxx_path}\)" "$cache"; then
    echo "$(basename "$0"): $dir was configured with another generator or compiler; starting afresh" >&2
    if [[ $mode == cache-only ]]; then
      rm -rf "$cache" "$dir/CMakeFiles"
    else
      rm -rf "$dir"
    fi
  fi
}

corio_extra_args() {
  # shellcheck disable=SC2206,SC2034  # word-split on purpose; used by the caller
  extra=(${CMAKE_ARGS:-})
}
