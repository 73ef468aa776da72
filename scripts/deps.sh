#!/usr/bin/env bash
# Installs what corio's build, tests and examples need, if it is missing.
#
#   scripts/deps.sh            g++, cmake, ninja, Asio, Catch2, fmt, libcurl,
#                              nginx-light and openssl (test_http's HTTP/2 case)
#                              (+ Google Benchmark, python3 and doxygen, optional)
#   scripts/deps.sh --clang    also clang++ and its sanitizer runtimes
#   scripts/deps.sh --valgrind also valgrind (.ci/run's memcheck stage)
#   scripts/deps.sh --ci       what .ci/run needs, in ONE apt-get call: --clang,
#                              --valgrind and doxygen (required there); no
#                              Google Benchmark or python3 (CI builds no benchmarks)
#   scripts/deps.sh --check    only report what is missing (exit 1 if any)
#
# Idempotent: when everything is present it only runs a few file checks and
# returns at once. Otherwise it runs `apt-get update` once and installs the
# missing Debian/Ubuntu packages (as root, or through sudo).
set -euo pipefail

want_clang=0
want_valgrind=0
want_ci=0
check_only=0
for arg in "$@"; do
  case "$arg" in
    --clang) want_clang=1 ;;
    --valgrind) want_valgrind=1 ;;
    --ci) want_clang=1; want_valgrind=1; want_ci=1 ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

required=()   # Debian packages that must be installed
optional=()   # nice to have (benchmarks); their failure is not fatal

have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_header() {   # any of the given paths under the usual include dirs
  local h d
  for h in "$@"; do
    for d in /usr/include /usr/local/include; do
      [[ -e "$d/$h" ]] && return 0
    done
  done
  return 1
}

have_cmd g++                    || required+=(g++)
have_cmd cmake                  || required+=(cmake)
have_cmd ninja                  || required+=(ninja-build)
have_header asio.hpp            || required+=(libasio-dev)
have_header catch2/catch.hpp catch2/catch_all.hpp || required+=(catch2)
have_header fmt/format.h        || required+=(libfmt-dev)
# corio::http; Debian puts curl.h under the multiarch include dir
{ have_header curl/curl.h || compgen -G '/usr/include/*/curl/curl.h' >/dev/null; } ||
  required+=(libcurl4-openssl-dev)
# test_http's HTTP/2 case: nginx serves h2 over TLS with a certificate openssl makes
{ have_cmd nginx || [[ -x /usr/sbin/nginx ]]; } || required+=(nginx-light)
have_cmd openssl                || required+=(openssl)
if (( ! want_ci )); then
  have_header benchmark/benchmark.h || optional+=(libbenchmark-dev)
  have_cmd python3                || optional+=(python3)
fi
have_cmd ccache                 || optional+=(ccache)   # .ci/run uses it when present
(( want_valgrind )) && { have_cmd valgrind || required+=(valgrind); }
if (( want_ci )); then
  have_cmd doxygen              || required+=(doxygen)   # .ci/run's API reference stage
else
  have_cmd doxygen              || optional+=(doxygen)   # the `docs` target (API reference)
fi

clang_tsan_runtime() {   # does clang++ have its ThreadSanitizer/ASan runtimes?
  local dir arch
  dir=$(clang++ -print-resource-dir 2>/dev/null) || return 1
  arch=$(uname -m)
  compgen -G "$dir/lib/linux/libclang_rt.tsan-$arch.a" >/dev/null ||
    compgen -G "$dir/lib/$arch-*/libclang_rt.tsan.a" >/dev/null
}
if (( want_clang )); then
  if ! have_cmd clang++; then
    required+=(clang)
    need_rt=1
  elif ! clang_tsan_runtime; then
    need_rt=1
  else
    need_rt=0
  fi
  # Debian 12 ships the sanitizer runtimes in libclang-rt-dev, only
  # *recommended* by clang (and we install without recommends).
  (( need_rt )) && required+=(libclang-rt-dev)
  # .ci/run checks the formatting (scripts/format.sh --check) in its clang stage
  { have_cmd clang-format || have_cmd clang-format-14; } || required+=(clang-format)
fi

if (( ${#required[@]} == 0 && ${#optional[@]} == 0 )); then
  exit 0
fi

echo "deps.sh: missing: ${required[*]:-} ${optional[*]:+(optional: ${optional[*]})}" >&2
if (( check_only )); then
  (( ${#required[@]} == 0 ))
  exit $?
fi

if ! have_cmd apt-get; then
  echo "deps.sh: apt-get is not available; install the packages above by hand" >&2
  (( ${#required[@]} == 0 ))   # optional ones alone are not an error
  exit $?
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=(env)
elif have_cmd sudo; then
  as_root=(sudo env)
else
  echo "deps.sh: not root and no sudo: cannot install ${required[*]:-} ${optional[*]:-}" >&2
  (( ${#required[@]} == 0 ))
  exit $?
fi

apt=("${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)

"${apt[@]}" update -qq
# Packages that apt does not know (e.g. libclang-rt-dev outside Debian 12, where
# clang itself carries the runtimes) are dropped rather than failing the run.
known() {
  local p out=()
  for p in "$@"; do
    if apt-cache show "$p" >/dev/null 2>&1; then out+=("$p"); else echo "deps.sh: no package $p here; skipped" >&2; fi
  done
  (( ${#out[@]} )) && printf '%s\n' "${out[@]}"
  return 0
}
mapfile -t required < <(known "${required[@]}")
mapfile -t optional < <(known "${optional[@]}")

# One apt-get call for everything (one dependency resolution, one round of
# dpkg triggers); only if it fails are the required packages installed alone.
install=("${apt[@]}" install -y -qq --no-install-recommends)
if ! "${install[@]}" "${required[@]}" "${optional[@]}"; then
  if (( ${#required[@]} )); then
    "${install[@]}" "${required[@]}"
  fi
  (( ${#optional[@]} )) && echo "deps.sh: optional packages not installed: ${optional[*]}" >&2
fi

if (( want_clang )) && ! clang_tsan_runtime; then
  echo "deps.sh: warning: clang++ sanitizer runtimes still not found" >&2
fi
echo "deps.sh: done" >&2
