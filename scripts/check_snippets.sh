#!/bin/sh
# Checks that the code blocks of a Markdown file are copies of regions of
# compiled sources, so the docs cannot drift from code that ctest builds and runs.
#
#   scripts/check_snippets.sh FILE.md...      (paths relative to the repository root)
#
# A block to check is preceded by a line `<!-- from examples/x.cpp:name -->`;
# the fenced block after it must equal the lines between the two lines
# `//! [name]` of examples/x.cpp, with their common indentation removed.
# Prints every mismatch as a diff and exits 1; exits 0 when all match.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
count=0

region() {   # $1 source, $2 name: the region, dedented, on stdout
  awk -v tag="//! [$2]" '
    { line = $0; sub(/^[ \t]+/, "", line) }
    line == tag { inside = !inside; found = 1; next }
    inside { lines[n++] = $0 }
    END {
      if (!found) exit 3
      min = -1
      for (i = 0; i < n; i++) if (lines[i] ~ /[^ ]/) {
        match(lines[i], /^ */); if (min < 0 || RLENGTH < min) min = RLENGTH
      }
      for (i = 0; i < n; i++) print (lines[i] ~ /[^ ]/) ? substr(lines[i], min + 1) : ""
    }' "$1"
}

for md in "$@"; do
  # Each marked block of $md into $tmp/N.block, with its source and name in $tmp/N.ref.
  awk -v dir="$tmp" '
    match($0, /^<!-- from [^ ]+:[^ ]+ -->$/) { ref = substr($0, 11, length($0) - 14); want = 1; next }
    want == 1 && /^```/ { want = 2; k++; print ref > (dir "/" k ".ref"); printf "" > (dir "/" k ".block"); next }
    want == 2 && /^```/ { want = 0; next }
    want == 2 { print > (dir "/" k ".block") }
    want == 1 && /[^ ]/ { print FILENAME ": marker " ref " is not followed by a code block" > "/dev/stderr"; exit 1 }
  ' "$md" || status=1
  for ref in "$tmp"/*.ref; do
    [ -e "$ref" ] || continue
    r=$(cat "$ref")
    src=${r%:*}
    name=${r##*:}
    count=$((count + 1))
    if ! region "$src" "$name" > "$tmp/want" 2>/dev/null; then
      echo "$md: $src has no region //! [$name]" >&2
      status=1
    elif ! diff -u "$tmp/want" "${ref%.ref}.block" > "$tmp/diff"; then
      echo "$md: the block from $src:$name differs from the source (- source, + $md):" >&2
      cat "$tmp/diff" >&2
      status=1
    fi
    rm -f "$ref" "${ref%.ref}.block"
  done
done
echo "check_snippets: $count block(s) checked in $*"
exit $status
