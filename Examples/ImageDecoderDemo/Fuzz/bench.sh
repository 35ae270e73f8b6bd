#!/usr/bin/env bash
# Decoder speed, working tree against a baseline revision, in one run (release, -O -wmo).
#
#   Examples/ImageDecoderDemo/Fuzz/bench.sh [BASELINE_REF] [SECONDS_PER_FILE]
#   Examples/ImageDecoderDemo/Fuzz/bench.sh --hostile [BASELINE_REF]
#
# Compiles DecoderBench.swift with the PNGDecoder sources of BASELINE_REF (default main) and of
# the working tree. The default mode runs the two binaries alternately three times over the shipped
# photos and prints, per photo, the best time per parse + decode of each and their ratio
# (new / baseline). --hostile writes the files of `png_reference.py hostile` (each at most 1 MiB)
# and decodes each once per binary, in its own process, printing time, peak RSS and outcome.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel)"
hostile=0
if [ "${1:-}" = "--hostile" ]; then hostile=1; shift; fi
ref="${1:-main}"
seconds="${2:-1}"
sources="Examples/ImageDecoderDemo/Sources/PNGDecoder"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/baseline"
git -C "$root" archive "$ref" "$sources" | tar -x -C "$work/baseline"
flags=(-O -wmo -parse-as-library -module-name DecoderBench -enable-upcoming-feature ExistentialAny
       -enable-upcoming-feature InternalImportsByDefault)
swiftc "${flags[@]}" -o "$work/bench-baseline" "$here/DecoderBench.swift" "$work/baseline/$sources"/*.swift
swiftc "${flags[@]}" -o "$work/bench-new" "$here/DecoderBench.swift" "$root/$sources"/*.swift

if [ "$hostile" = 1 ]; then
    mkdir -p "$work/hostile"
    python3 "$root/Tests/Support/png_reference.py" hostile "$work/hostile"
    printf "%-16s %8s %9s %10s %7s %10s  %s\n" file bytes build wall_ms RSS_MiB process_cpu_ms outcome
    for file in "$work"/hostile/*.png; do
        for build in baseline new; do
            # A 60 s cap, so a baseline that runs away does not hold the bench forever.
            line="$(timeout 60 "$work/bench-$build" 0 "$file" || echo "$(basename "$file") >60000 - - timeout")"
            read -r name ms rss cpu outcome <<< "$line"
            printf "%-16s %8s %9s %10s %7s %10s  %s\n" "$name" "$(stat -c %s "$file")" "$build" "$ms" "$rss" "$cpu" "$outcome"
        done
    done
    exit 0
fi

photos=("$root"/Examples/ImageDecoderDemo/Photos/*.png)
for round in 1 2 3; do
    "$work/bench-baseline" "$seconds" "${photos[@]}" > "$work/baseline.$round"
    "$work/bench-new" "$seconds" "${photos[@]}" > "$work/new.$round"
done
echo "photo  baseline_ms($ref)  new_ms  new/baseline  (best of 3 rounds)"
cat "$work"/baseline.* | cut -f1,2 | sort -k1,1 -k2,2n | awk '!seen[$1]++' > "$work/baseline.best"
cat "$work"/new.* | cut -f1,2 | sort -k1,1 -k2,2n | awk '!seen[$1]++' > "$work/new.best"
join "$work/baseline.best" "$work/new.best" |
    awk '{ printf "%-18s %9.3f %9.3f %6.3f\n", $1, $2, $3, $3 / $2; b += $2; n += $3 }
         END { printf "%-18s %9.3f %9.3f %6.3f\n", "total", b, n, n / b }'
