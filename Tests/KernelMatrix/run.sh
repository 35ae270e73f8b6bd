#!/usr/bin/env bash
# Kernel × cgroup matrix: runs the package's tests, built once on this machine, on other Linux
# kernels in qemu guests (virtme-ng: the guest's root is this machine's filesystem over 9p).
#
#   Tests/KernelMatrix/run.sh                 # the full matrix: host, 6.1, 5.10, 4.19 (if it resolves)
#   Tests/KernelMatrix/run.sh --ci            # CI subset: 6.1 pressure+monitor, 5.10 memory
#   Tests/KernelMatrix/run.sh --kernels 5.10 --groups 5.10=memory,stress
#
# Kernels: host (this machine's kernel, no guest), 6.1 (Debian bookworm), 5.10 (bullseye),
# 4.19 (buster). Test groups: memory (VolatileMemory tests), cache (VolatileCache tests, the
# monitor's included), monitor (only the monitor's tests), pressure (pressure tests through the
# sandbox's cgroups), sandbox (the sandbox's own tests), stress (volatile-stress, 512 MiB working
# set under a 128 MiB limit), all.
#
# Needs root (cgroups, apt). Installs qemu-system-x86, busybox-static and kmod with apt-get and
# virtme-ng with pip when they are missing. Kernel packages are downloaded with a private apt
# state into $VOLATILE_KERNEL_CACHE (default .build-kernels/ in the package) and extracted
# there: nothing is installed into /boot. Prints one line per kernel:
#
#   KERNEL version=… cgroup=v1|v2 detection=… populate=native|touch tests=… passed=… skipped=… failed=… stress_corrupt=… oom=… seconds=…
#
# followed by the reason of every skipped test. Exits 1 when a kernel fails, a guest does not
# boot or finish, or a test fails; shows the guest's output then.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
package=$(cd "$here/../.." && pwd)
cache=${VOLATILE_KERNEL_CACHE:-$package/.build-kernels}
timeout=${VOLATILE_KERNEL_TIMEOUT:-2400}
memory=${VOLATILE_KERNEL_MEMORY:-2G}
# Emulated guests run the adversarial test with 1/N of its cycles (see AdversarialTests).
divisor=${VOLATILE_KERNEL_CYCLE_DIVISOR:-50}
# ... and the pressure tests' timed workloads N times longer (VOLATILE_TEST_TIME_SCALE).
time_scale=${VOLATILE_KERNEL_TIME_SCALE:-10}
# One vCPU: with two, a vCPU the (busy) host deschedules while it holds the guest's mmap lock
# leaves the other spinning on it (no paravirtual locks under TCG). Measured in a 6.1 guest,
# volatile-stress with 2 threads and userfaultfd made 11 pins in 7 s on 2 vCPUs, 184 in 5 s on 1.
cpus=${VOLATILE_KERNEL_CPUS:-1}

kernels="host,6.1,5.10,4.19"
declare -A groups=([host]=all [6.1]=all [5.10]=all [4.19]=all)
build=1
while (( $# > 0 )); do
    case $1 in
        --ci)
            kernels="6.1,5.10"
            groups[6.1]=pressure,monitor
            groups[5.10]=memory ;;
        --kernels) kernels=$2; shift ;;
        --groups) groups[${2%%=*}]=${2#*=}; shift ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done

log() { echo "[kernel-matrix] $*" >&2; }

# ---- what the matrix needs on this machine -------------------------------------------------
install_tools() {
    local missing=()
    command -v qemu-system-x86_64 > /dev/null || missing+=(qemu-system-x86)
    [[ -x /bin/busybox ]] || command -v busybox > /dev/null || missing+=(busybox-static)
    command -v depmod > /dev/null || [[ -x /usr/sbin/depmod ]] || missing+=(kmod)
    if (( ${#missing[@]} > 0 )); then
        log "apt-get install ${missing[*]}"
        apt-get update -qq > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null \
            || { log "cannot install ${missing[*]}"; exit 1; }
    fi
    if ! command -v vng > /dev/null; then
        log "pip install virtme-ng"
        python3 -m pip install --quiet --disable-pip-version-check virtme-ng || { log "cannot install virtme-ng"; exit 1; }
        hash -r
    fi
}

# Downloads suite's linux-image-amd64 dependency (the versioned image package) with a private
# apt state, and extracts it. Prints the vmlinuz path, or nothing when the suite does not resolve.
fetch_kernel() {
    local suite=$1 uri=$2 dir=$cache/apt-$1
    local root=$cache/$1/root
    local image
    image=$(ls "$root"/boot/vmlinuz-* 2> /dev/null | head -1)
    if [[ -n $image ]]; then echo "$image"; return 0; fi
    mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/etc"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$dir/etc/sources.list"
    : > "$dir/status"
    local opts=(-o "Dir::Etc::SourceList=$dir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=$dir/status" -o "Dir::Cache=$dir"
        -o "Dir::Cache::Archives=$dir/archives" -o Acquire::Check-Valid-Until=false
        -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update -qq > "$dir/update.log" 2>&1
    local package
    package=$(apt-cache "${opts[@]}" depends linux-image-amd64 2> /dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [[ -z $package ]]; then
        log "$suite: linux-image-amd64 does not resolve from $uri ($(grep -m1 -E '^(W|E):' "$dir/update.log"))"
        return 0
    fi
    (cd "$dir" && apt-get "${opts[@]}" download "$package" > "$dir/download.log" 2>&1) \
        || { log "$suite: apt-get download $package failed"; cat "$dir/download.log" >&2; return 0; }
    mkdir -p "$root"
    dpkg-deb -x "$dir"/"$package"_*.deb "$root" || { log "$suite: dpkg-deb -x failed"; return 0; }
    rm -f "$dir"/"$package"_*.deb
    ls "$root"/boot/vmlinuz-* 2> /dev/null | head -1
}

suite_of() {
    case $1 in
        6.1) echo "bookworm http://deb.debian.org/debian" ;;
        5.10) echo "bullseye http://deb.debian.org/debian" ;;
        # Buster left deb.debian.org for archive.debian.org; try both.
        4.19) echo "buster http://archive.debian.org/debian buster http://deb.debian.org/debian" ;;
    esac
}

# ---- reading a kernel's results -------------------------------------------------------------
field() { sed -n "s/^$1=//p" "$2/result" 2> /dev/null | tail -1; }
xml_count() { sed -n "s/.*<testsuite [^>]* $1=\"\([0-9]*\)\".*/\1/p" "$2/tests.xml" 2> /dev/null | head -1; }

# Swift Testing reports a skip as "Test NAME skipped: COMMENT" and a Test.cancel as "Test NAME
# was cancelled after N seconds: COMMENT";
# a test whose name contains "skipped" is not one (its lines end in started./passed after …).
skip_lines() {
    sed 's/\x1b\[[0-9;]*m//g' "$1/tests.log" 2> /dev/null \
        | grep -E '^.{0,12}Test .* (skipped|was cancelled)( after [0-9.]+ seconds)?(\.|:.*)$' \
        | grep -vE '( started\.| (passed|failed) after [0-9.]+ seconds.*)$'
}

report() {
    local name=$1 out=$2 seconds=$3 status=0
    local version cgroup detection populate tests failures skipped passed corrupt oom
    version=$(field version "$out"); cgroup=$(field cgroup "$out")
    detection=$(sed -n 's/^KERNEL-FEATURES .* detection=\([^ ]*\) .*/\1/p' "$out/tests.log" 2> /dev/null | head -1)
    populate=$(sed -n 's/^KERNEL-FEATURES .* populate=\([^ ]*\) .*/\1/p' "$out/tests.log" 2> /dev/null | head -1)
    tests=$(xml_count tests "$out"); failures=$(xml_count failures "$out"); skipped=$(xml_count skipped "$out")
    local errors; errors=$(xml_count errors "$out")
    # Swift Testing's xUnit report counts a cancelled test (Test.cancel) as neither a failure
    # nor a skip: count the skip lines of the log instead.
    local skip_lines; skip_lines=$(skip_lines "$out" | grep -vc 'Test case ')
    local skipped_cases; skipped_cases=$(skip_lines "$out" | grep -c 'Test case ')
    (( ${skip_lines:-0} > ${skipped:-0} )) && skipped=$skip_lines
    if [[ -n $tests ]]; then
        passed=$(( tests - ${failures:-0} - ${errors:-0} - ${skipped:-0} ))
    else
        tests=0 passed=0 failures=1 skipped=0
    fi
    local stress_status; stress_status=$(field stress_status "$out")
    if [[ -n $stress_status ]]; then
        corrupt=$(sed -n 's/^STRESS .*corrupt=\([0-9]*\).*/\1/p' "$out/stress.log" | tail -1)
        oom=$(sed -n 's/^SANDBOX oom=\([a-z]*\).*/\1/p' "$out/stress.log" | tail -1)
        [[ $stress_status == 0 && $corrupt == 0 && $oom == false ]] || status=1
    else
        corrupt=- oom=-
    fi
    [[ $(field tests_status "$out") == 0 && ${failures:-0} == 0 && ${errors:-0} == 0 ]] || status=1
    [[ -f $out/done ]] || status=1
    echo "KERNEL name=$name version=${version:-?} cgroup=${cgroup:-?} detection=${detection:-?} populate=${populate:-?} tests=$tests passed=$passed skipped=$skipped skipped_cases=$skipped_cases failed=$(( ${failures:-0} + ${errors:-0} )) stress_corrupt=${corrupt:-?} oom=${oom:-?} groups=${groups[$name]} seconds=$seconds"
    # Every skip names what is missing: print them under the line.
    skip_lines "$out" | sed 's/^[^A-Za-z]*/    skip: /'
    if (( status != 0 )); then
        echo "---- $name: output (last 150 lines of each log in $out) ----"
        for file in console.log tests.log stress.log; do
            [[ -f $out/$file ]] || continue
            echo "-- $file"
            grep -vE 'started\.$' "$out/$file" | tail -150
        done
        echo "---- end of $name ----"
    fi
    return $status
}

# ---- main -----------------------------------------------------------------------------------
# In a function, read whole before it runs: editing this file during a run cannot derail it.
main() {
[[ $(id -u) == 0 ]] || { log "needs root (cgroups, apt, the guests' cgroup setup)"; exit 1; }
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
mkdir -p "$cache"
if [[ $kernels != host ]]; then install_tools; fi
if (( build )); then
    log "swift build --build-tests (debug), once for every kernel"
    (cd "$package" && swift build --build-tests > "$cache/build.log" 2>&1) || { tail -50 "$cache/build.log"; exit 1; }
    # The guests run the release volatile-stress: its workloads are timed, and a debug build
    # under software emulation does not fill its working set in time.
    log "swift build -c release --product volatile-stress"
    (cd "$package" && swift build -c release --product volatile-stress >> "$cache/build.log" 2>&1) || { tail -50 "$cache/build.log"; exit 1; }
fi
binaries=$package/.build/debug
[[ -x $binaries/VolatileCachePackageTests.xctest && -x $binaries/volatile-stress ]] \
    || { log "no test binaries in $binaries (run without --no-build)"; exit 1; }

# The guests run a copy of guest.sh (bash reads a script as it goes; an edit must not reach a
# running guest).
guest=$cache/guest.sh
cp "$here/guest.sh" "$guest"

overall=0
lines=()
for name in ${kernels//,/ }; do
    out=$cache/out-$name
    rm -rf "$out"; mkdir -p "$out"
    start=$(date +%s)
    if [[ $name == host ]]; then
        log "host: $(uname -r), groups ${groups[$name]}"
        bash "$guest" "$out" "$binaries" "$toolchain" "${groups[$name]}" > "$out/console.log" 2>&1
    else
        read -r -a candidates <<< "$(suite_of "$name")"
        [[ ${#candidates[@]} -gt 0 ]] || { log "unknown kernel $name"; overall=1; continue; }
        image=""
        for (( i = 0; i < ${#candidates[@]}; i += 2 )); do
            image=$(fetch_kernel "${candidates[i]}" "${candidates[i+1]}")
            [[ -n $image ]] && break
        done
        if [[ -z $image ]]; then
            line="KERNEL name=$name unavailable: Debian's ${candidates[0]} kernel package does not resolve here (see $cache/apt-${candidates[0]}/update.log)"
            echo "$line"; lines+=("$line")
            # 4.19 is optional (buster is archived); every other kernel must be there.
            [[ $name == 4.19 ]] || overall=1
            continue
        fi
        log "$name: booting $(basename "$image") in qemu (software emulation), groups ${groups[$name]}"
        # KVM guests hang here after decompression; TCG boots in about 25 s. The script's exit
        # status does not come back through vng here (console fallback), so guest.sh writes
        # $out/done as its last step.
        timeout --kill-after=30 "$timeout" vng --disable-kvm --force-9p --verbose \
            -r "$image" --memory "$memory" --cpus "$cpus" --rwdir="$out" \
            -- "bash $guest $out $binaries $toolchain ${groups[$name]} $divisor $time_scale" \
            < /dev/null > "$out/console.log" 2>&1
        vng_status=$?
        if [[ ! -f $out/result ]] || ! grep -q '^version=' "$out/result"; then
            echo "KERNEL name=$name failed: the guest did not boot or did not run the script (vng exit $vng_status)"
            echo "---- $name: console (last 80 lines) ----"; tail -80 "$out/console.log"; echo "----"
            overall=1
            continue
        fi
        [[ -f $out/done ]] || log "$name: the guest did not finish (vng exit $vng_status; timeout ${timeout}s?)"
    fi
    seconds=$(( $(date +%s) - start ))
    report "$name" "$out" "$seconds" | tee "$out/summary.txt"
    (( ${PIPESTATUS[0]} == 0 )) || overall=1
    lines+=("$(grep -m1 '^KERNEL ' "$out/summary.txt")")
done

echo "== kernel matrix summary"
printf '%s\n' "${lines[@]}"
return $overall
}
main
exit
