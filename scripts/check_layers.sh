#!/usr/bin/env bash
# The layer rule of include/corio/detail/: a detail header includes other
# detail headers, errors.hpp and system headers, never a public corio header.
# Prints each offending include as file:line: text and exits 1 when there is
# one; exits 0 (silently) when the rule holds.
#
#   ./scripts/check_layers.sh [include directory, default include/corio]
#   ./scripts/check_layers.sh --self-test   (shows the check catches a violation)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${1:-}" == --self-test ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/corio/detail"
  printf '#include "../errors.hpp"\n#include "ok.hpp"\n#include <vector>\n' > "$tmp/corio/detail/ok.hpp"
  "$0" "$tmp/corio" || { echo "check_layers self-test: a clean tree was rejected" >&2; exit 1; }
  printf '#include "ok.hpp"\n#include "../loop.hpp"\n' > "$tmp/corio/detail/bad.hpp"
  if out=$("$0" "$tmp/corio"); then
    echo "check_layers self-test: an include of ../loop.hpp was not caught" >&2; exit 1
  fi
  grep -q 'detail/bad.hpp:2: includes "../loop.hpp"' <<<"$out" ||
    { echo "check_layers self-test: the report does not name the include: $out" >&2; exit 1; }
  echo "check_layers self-test: ok"
  exit 0
fi
inc="${1:-$root/include/corio}"
[[ -d "$inc/detail" ]] || { echo "check_layers: no detail/ directory under $inc" >&2; exit 2; }

bad=0
for f in "$inc"/detail/*.hpp; do
  # Quoted includes only: <...> is a system or third-party header.
  while IFS=: read -r line text; do
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$text")
    case "$target" in
      ../errors.hpp) continue ;;     # the one public header detail/ may use
      ../*|corio/*) ;;               # a public header: a violation
      */*) ;;                        # anything outside detail/ (e.g. "../../x"): a violation
      *) [[ -f "$inc/detail/$target" ]] && continue ;;  # another detail header
    esac
    echo "check_layers: ${f#"$root"/}:$line: includes \"$target\" (a detail/ header may include only detail/ headers and ../errors.hpp)"
    bad=1
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done
exit "$bad"
