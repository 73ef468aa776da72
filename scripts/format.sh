#!/usr/bin/env bash
# Formats corio's C++ sources with the root .clang-format.
#
#   ./scripts/format.sh           rewrite every file in place
#   ./scripts/format.sh --check   change nothing; list the files that differ
#                                 and exit 1 if any does
#   ./scripts/format.sh [--check] FILE...   only these files
#
# Files: *.hpp, *.cpp and *.c tracked by git (or, outside a git checkout, found
# under include/, tests/, examples/ and bench/). CLANG_FORMAT picks the
# binary (default: clang-format, else clang-format-14).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$corio_root"

check=0
files=()
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "format.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done

cf=${CLANG_FORMAT:-}
if [[ -z $cf ]]; then
  for c in clang-format clang-format-14; do
    command -v "$c" >/dev/null 2>&1 && { cf=$c; break; }
  done
fi
[[ -n $cf ]] || { echo "format.sh: clang-format not found (Debian: clang-format)" >&2; exit 2; }

if (( ${#files[@]} == 0 )); then
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- '*.hpp' '*.cpp' '*.c')
  else
    mapfile -t files < <(find include tests examples bench -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.c' \) | sort)
  fi
fi

if (( check )); then
  bad=0
  for f in "${files[@]}"; do
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
      echo "needs formatting: $f"
      bad=1
    fi
  done
  (( bad == 0 )) || echo "format.sh: run ./scripts/format.sh to fix" >&2
  exit "$bad"
fi
"$cf" --style=file -i "${files[@]}"
