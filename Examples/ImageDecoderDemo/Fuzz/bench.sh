#!/usr/bin/env bash
# Decoder speed, working tree against a baseline revision, in one run (release, -O -wmo).
#
#   Examples/ImageDecoderDemo/Fuzz/bench.sh [BASELINE_REF] [SECONDS_PER_FILE]
#
# Compiles DecoderBench.swift with the PNGDecoder sources of BASELINE_REF (default main) and of
# the working tree, then runs the two binaries alternately three times over the shipped photos and
# prints, per photo, the best time per full decode of each and their ratio (new / baseline).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel)"
ref="${1:-main}"
seconds="${2:-1}"
sources="Examples/ImageDecoderDemo/Sources/PNGDecoder"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/baseline"
git -C "$root" archive "$ref" "$sources" | tar -x -C "$work/baseline"
flags=(-O -wmo -module-name DecoderBench -parse-as-library -enable-upcoming-feature ExistentialAny
       -enable-upcoming-feature InternalImportsByDefault)
swiftc "${flags[@]}" -o "$work/bench-baseline" "$here/DecoderBench.swift" "$work/baseline/$sources"/*.swift
swiftc "${flags[@]}" -o "$work/bench-new" "$here/DecoderBench.swift" "$root/$sources"/*.swift

photos=("$root"/Examples/ImageDecoderDemo/Photos/*.png)
for round in 1 2 3; do
    "$work/bench-baseline" "$seconds" "${photos[@]}" > "$work/baseline.$round"
    "$work/bench-new" "$seconds" "${photos[@]}" > "$work/new.$round"
done
echo "photo  baseline_ms($ref)  new_ms  new/baseline  (best of 3 rounds)"
cat "$work"/baseline.* | sort -k1,1 -k2,2n | awk '!seen[$1]++' > "$work/baseline.best"
cat "$work"/new.* | sort -k1,1 -k2,2n | awk '!seen[$1]++' > "$work/new.best"
join "$work/baseline.best" "$work/new.best" |
    awk '{ printf "%-18s %9.3f %9.3f %6.3f\n", $1, $2, $3, $3 / $2; b += $2; n += $3 }
         END { printf "%-18s %9.3f %9.3f %6.3f\n", "total", b, n, n / b }'
