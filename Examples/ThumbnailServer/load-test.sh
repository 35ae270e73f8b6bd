#!/usr/bin/env bash
# Load test of the thumbnail server (issue 10): starts the server with each cache in turn, each in
# its own memory cgroup (256 MiB by default), and drives it with wrk on 127.0.0.1: 64 connections,
# 2 threads, 30 s, paths drawn Zipf(s=1.1) from 1,000 (photo, size) pairs of about 1 GiB decoded.
# Prints one LOAD line per cache, then a CPU comparison of the volatile cache against a handler
# that returns preloaded bytes (a small gallery that fits in memory), and writes an SVG chart.
#
#   Examples/ThumbnailServer/load-test.sh [--seconds 30] [--caches "volatile nscache nscache-tuned none"]
#       [--memory-limit-mib 256] [--connections 64] [--threads 2] [--cpu-seconds 8] [--cpu-rounds 3] [--no-cpu]
#       [--svg PATH] [--port 18080] [--no-build]
#
# Needs wrk (apt-get install -y wrk), curl, python3 (the chart), and root or a delegated cgroup for
# the memory limit (without one the server says so and runs unlimited; oom is then "unknown").
# Every loop is bounded in count and time; nothing listens beyond 127.0.0.1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
seconds=30
caches="volatile nscache nscache-tuned none"
limit_mib=256
connections=64
threads=2
cpu_seconds=8
cpu_rounds=3
cpu_check=1
svg="$here/load-test.svg"
port=18080
build=1
zipf=1.1

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --caches) caches="$2"; shift 2 ;;
    --memory-limit-mib) limit_mib="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --cpu-seconds) cpu_seconds="$2"; shift 2 ;;
    --cpu-rounds) cpu_rounds="$2"; shift 2 ;;
    --no-cpu) cpu_check=0; shift ;;
    --svg) svg="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "load-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for number in "$seconds" "$limit_mib" "$connections" "$threads" "$cpu_seconds" "$cpu_rounds" "$port"; do
  case "$number" in ''|*[!0-9]*) echo "load-test: expected a whole number, not \"$number\"" >&2; exit 2 ;; esac
done

for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "load-test: $tool not found (apt-get install -y wrk curl)" >&2; exit 1; }
done

if [ "$build" = 1 ]; then
  swift build -c release --package-path "$here" --product thumbnail-server >&2
fi
server="$(swift build -c release --package-path "$here" --show-bin-path)/thumbnail-server"
[ -x "$server" ] || { echo "load-test: $server not built (drop --no-build)" >&2; exit 1; }

work="$(mktemp -d /tmp/thumbnail-load-test.XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The photos the server serves (its default folder).
photos=()
for file in "$here"/../ImageDecoderDemo/Photos/*.png; do
  name="$(basename "$file" .png)"
  photos+=("$name")
done
[ "${#photos[@]}" -gt 0 ] || { echo "load-test: no photos in $here/../ImageDecoderDemo/Photos" >&2; exit 1; }

# 1,000 (photo, size) pairs, most popular first. Pair k is photo k mod 8 at size index
# f(k / 8) = (37 (k / 8) + 11) mod 125, a permutation, so the popular pairs mix photos and sizes.
# Width 64 + 7 f (64 to 932 px); height the width, or 3/4 of it for odd f.
# Together about 1 GiB decoded: the image-decoder demo's gallery size.
awk -v names="${photos[*]}" -v count=1000 'BEGIN {
  n = split(names, photo, " "); total = 0
  for (k = 0; k < count; k++) {
    f = (37 * int(k / n) + 11) % 125
    w = 64 + 7 * f; h = (f % 2 == 1) ? int(w * 3 / 4) : w
    printf "/photos/%s/%dx%d\n", photo[k % n + 1], w, h
    total += 122 + 4 * w * h
  }
  printf "%.1f\n", total / 1048576 > "/dev/stderr"
}' > "$work/paths.txt" 2> "$work/paths-mib.txt"
pairs="$(wc -l < "$work/paths.txt")"
decoded_mib="$(cat "$work/paths-mib.txt")"

# The small gallery for the CPU comparison: every photo at 4 sizes (about 1.6 MiB decoded).
small_sizes="64x64,96x72,128x128,160x120"
for name in "${photos[@]}"; do
  for size in ${small_sizes//,/ }; do echo "/photos/$name/$size"; done
done > "$work/small-paths.txt"

echo "load: $pairs (photo, size) pairs, $decoded_mib MiB decoded, Zipf s=$zipf; wrk $threads threads, $connections connections, ${seconds} s per cache; limit $limit_mib MiB"

# A JSON number from /stats: json_number FILE KEY (first match).
json_number() {
  grep -o "\"$2\":[0-9.eE+-]*" "$1" | head -1 | cut -d: -f2
}

# run_server CACHE PATHS SECONDS [SERVER ARGUMENTS...]: one run; leaves $work/CACHE.{log,wrk,before,after}.
run_server() {
  local cache="$1" paths="$2" duration="$3"; shift 3
  local tag="$cache-$duration-$(basename "$paths" .txt)"
  "$server" --cache "$cache" --port "$port" --memory-limit-mib "$limit_mib" \
    --lifetime-seconds $((duration + 120)) "$@" > "$work/$tag.log" 2>&1 &
  server_pid=$!
  local ready=0
  for _ in $(seq 1 600); do
    if curl -sf --max-time 2 -o "$work/$tag.before" "http://127.0.0.1:$port/stats"; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ready" = 1 ]; then
    timeout $((duration + 60)) wrk -t"$threads" -c"$connections" -d"${duration}s" --timeout 10s \
      -s "$here/load-test.lua" "http://127.0.0.1:$port" -- "$paths" "$zipf" > "$work/$tag.wrk" 2>&1 || true
    curl -sf --max-time 5 -o "$work/$tag.after" "http://127.0.0.1:$port/stats" || true
  else
    echo "load-test: the $cache server did not start:" >&2
    tail -5 "$work/$tag.log" >&2
  fi
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  last_tag="$tag"
}

# A field of the WRK line: wrk_field TAG NAME.
wrk_field() {
  grep -o "^WRK .*" "$work/$1.wrk" | head -1 | tr ' ' '\n' | grep "^$2=" | cut -d= -f2
}

results="$work/results.txt"
: > "$results"
for cache in $caches; do
  run_server "$cache" "$work/paths.txt" "$seconds"
  tag="$last_tag"
  if grep -q '^WRK ' "$work/$tag.wrk" 2>/dev/null; then
    requests="$(wrk_field "$tag" requests)"; duration_us="$(wrk_field "$tag" duration_us)"
    rps="$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f", (d > 0 ? r / (d / 1e6) : 0) }')"
    ms() { awk -v u="$(wrk_field "$tag" "$1")" 'BEGIN { printf "%.2f", u / 1000 }'; }
    p50="$(ms p50_us)"; p99="$(ms p99_us)"; p999="$(ms p999_us)"
    non2xx="$(wrk_field "$tag" non2xx)"
    errors=$(( $(wrk_field "$tag" connect) + $(wrk_field "$tag" read) + $(wrk_field "$tag" write) + $(wrk_field "$tag" timeout) ))
  else
    rps=0; p50=0; p99=0; p999=0; non2xx=0; errors=1
    echo "load-test: no wrk result for $cache:" >&2; tail -5 "$work/$tag.wrk" >&2 || true
  fi
  sandbox="$(grep -o '^SANDBOX .*' "$work/$tag.log" | tail -1 || true)"
  oom="$(echo "$sandbox" | tr ' ' '\n' | grep '^oom=' | cut -d= -f2 || true)"
  peak="$(echo "$sandbox" | tr ' ' '\n' | grep '^peak_mib=' | cut -d= -f2 || true)"
  hits="?"; decodes="?"; cpu_ms="?"
  if [ -s "$work/$tag.after" ] && [ -s "$work/$tag.before" ]; then
    hits="$(json_number "$work/$tag.after" hits)"; decodes="$(json_number "$work/$tag.after" decodes)"
    # Server CPU per answered request: steadier than rps when other work shares the cores.
    cpu_ms="$(awk -v c0="$(json_number "$work/$tag.before" cpu_seconds)" -v c1="$(json_number "$work/$tag.after" cpu_seconds)" \
      -v r0="$(json_number "$work/$tag.before" 2xx)" -v r1="$(json_number "$work/$tag.after" 2xx)" \
      'BEGIN { n = r1 - r0; printf "%.2f", (n > 0 ? (c1 - c0) * 1000 / n : 0) }')"
  fi
  line="LOAD cache=$cache rps=$rps p50_ms=$p50 p99_ms=$p99 p999_ms=$p999 non2xx=$non2xx errors=$errors oom=${oom:-unknown} peak_mib=${peak:-unknown}"
  echo "$line"
  echo "$line hits=$hits decodes=$decodes server_cpu_ms_per_request=$cpu_ms" >> "$results"
  echo "  ($(grep -m1 '^thumbnail-server: ' "$work/$tag.log" | cut -d';' -f2- | cut -c2-); decodes $decodes, server CPU $cpu_ms ms per request)"
done

# CPU per request: the volatile cache against the preloaded dictionary, on a small gallery that
# fits in the hot set, so both serve every request from memory.
if [ "$cpu_check" = 1 ]; then
  cpu_line() {  # cpu_line TAG -> "rps us_per_request"
    local tag="$1"
    local before="$work/$tag.before" after="$work/$tag.after"
    if [ ! -s "$before" ] || [ ! -s "$after" ]; then echo "0 0"; return; fi
    awk -v c0="$(json_number "$before" cpu_seconds)" -v c1="$(json_number "$after" cpu_seconds)" \
        -v r0="$(json_number "$before" 2xx)" -v r1="$(json_number "$after" 2xx)" \
        -v q="$(wrk_field "$tag" requests)" -v d="$(wrk_field "$tag" duration_us)" \
        'BEGIN { n = r1 - r0; printf "%.1f %.2f", (d > 0 ? q / (d / 1e6) : 0), (n > 0 ? (c1 - c0) * 1e6 / n : 0) }'
  }
  # Rounds alternate the two servers and each figure is the round with the least CPU per request:
  # other work on the machine only ever adds to it, and alternating exposes both to the same.
  pre_us=""; vol_us=""; pre_all=""; vol_all=""; pre_rps=0; vol_rps=0
  for round in $(seq 1 "$cpu_rounds"); do
    run_server preloaded "$work/small-paths.txt" "$cpu_seconds" --preload-sizes "$small_sizes"
    read -r rps us <<< "$(cpu_line "$last_tag")"
    pre_all="$pre_all${pre_all:+,}$us"
    if [ -z "$pre_us" ] || awk -v a="$us" -v b="$pre_us" 'BEGIN { exit !(a > 0 && a < b) }'; then pre_us="$us"; pre_rps="$rps"; fi
    run_server volatile "$work/small-paths.txt" "$cpu_seconds"
    read -r rps us <<< "$(cpu_line "$last_tag")"
    vol_all="$vol_all${vol_all:+,}$us"
    if [ -z "$vol_us" ] || awk -v a="$us" -v b="$vol_us" 'BEGIN { exit !(a > 0 && a < b) }'; then vol_us="$us"; vol_rps="$rps"; fi
  done
  overhead="$(awk -v v="$vol_us" -v p="$pre_us" 'BEGIN { printf "%.1f", (p > 0 ? (v / p - 1) * 100 : 0) }')"
  pre_line="CPU cache=preloaded rps=$pre_rps cpu_us_per_request=$pre_us rounds=$pre_all"
  vol_line="CPU cache=volatile rps=$vol_rps cpu_us_per_request=$vol_us rounds=$vol_all overhead_vs_preloaded_pct=$overhead"
  echo "$pre_line"; echo "$vol_line"
  echo "$pre_line" >> "$results"; echo "$vol_line" >> "$results"
fi

# The chart: requests per second and latency percentiles per cache.
if command -v python3 >/dev/null; then
  python3 "$here/load-test-chart.py" "$results" "$svg" \
    "$pairs pairs, $decoded_mib MiB decoded, Zipf s=$zipf, $connections connections, ${seconds} s, ${limit_mib} MiB limit" \
    && echo "chart: $svg"
fi
