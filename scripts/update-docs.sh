#!/usr/bin/env bash
# Regenerates the parts of docs/ that come from `kiln ops` (tests/test_cli.cpp checks they
# match). Needs a built kiln in build/ (scripts/build.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

doc=docs/WORKLOADS.md
begin='<!-- begin: kiln ops --markdown -->'
end='<!-- end: kiln ops --markdown -->'
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
build/tools/kiln ops --markdown >"$generated"

grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || {
    echo "update-docs: $doc lacks the marker lines" >&2
    exit 1
}
awk -v begin="$begin" -v end="$end" -v gen="$generated" '
    $0 == begin { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }
' "$doc" >"$doc.new"
mv "$doc.new" "$doc"
echo "update-docs: $doc updated"
