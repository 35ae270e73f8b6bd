#!/usr/bin/env bash
# Builds the PNGDecoder libFuzzer target and runs it from the shipped photos.
#
#   Examples/ImageDecoderDemo/Fuzz/fuzz.sh [SECONDS] [LIBFUZZER_OPTION...]
#
# SECONDS defaults to 60. The binary is .build/fuzz/fuzz-png-decoder; the corpus grows in
# .build/fuzz/corpus, seeded with the shipped photos (Examples/ImageDecoderDemo/Photos/*.png, never
# written to) and 30 small PNGs of every colour type, depth and interlacing from
# `Tests/Support/png_reference.py seeds` (python3, standard library only), which keep the
# executions per second up. A crashing, leaking or slow input is saved in .build/fuzz/artifacts/
# and fails the run.
# Reproduce one with: .build/fuzz/fuzz-png-decoder .build/fuzz/artifacts/crash-...
#
# Limits checked: inputs up to 1 MiB (-max_len), 10 s per input under ASan (-timeout; the
# release-build goal is 1 s, measured by bench.sh --hostile), 2 GiB RSS, and in the target itself
# at most 64 bytes per image pixel (+256 KiB) allocated beyond the output.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
seconds="${1:-60}"
shift || true
out="$root/.build/fuzz"
mkdir -p "$out/corpus" "$out/artifacts" "$out/seeds"
python3 "$root/Tests/Support/png_reference.py" seeds "$out/seeds"

swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name FuzzPNGDecoder \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault \
    -o "$out/fuzz-png-decoder" \
    "$here/FuzzPNGDecoder.swift" "$root/Examples/ImageDecoderDemo/Sources/PNGDecoder"/*.swift

# Swift's own backtracer would also handle a crash; libFuzzer's handler is enough here.
SWIFT_BACKTRACE=enable=no "$out/fuzz-png-decoder" \
    -max_total_time="$seconds" -max_len=1048576 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/" "$@" \
    "$out/corpus" "$out/seeds" "$root/Examples/ImageDecoderDemo/Photos"
