#!/usr/bin/env bash
# Runs inside one kernel of the matrix (a virtme-ng guest, or the host itself for the host row).
# Called by Tests/KernelMatrix/run.sh; not meant to be run by hand except for debugging:
#
#   guest.sh OUT_DIR BUILD_DIR TOOLCHAIN_BIN GROUPS [CYCLE_DIVISOR [TIME_SCALE]]
#
# OUT_DIR        writable folder for logs and the result file (a --rwdir of the guest)
# BUILD_DIR      the package's .build/debug, built once on the host (swift build --build-tests)
# TOOLCHAIN_BIN  the folder `which swift` shows on the host (its lib/swift/linux holds the runtime)
# GROUPS         comma-separated: memory, cache, pressure, sandbox, monitor, stress (or all)
# CYCLE_DIVISOR  the adversarial test runs 1/N of its cycles (emulated guests: 50; default 1)
# TIME_SCALE     the pressure tests' workloads run N times longer (emulated guests: 10; default 1)
#
# Writes OUT_DIR/result (key=value lines), OUT_DIR/tests.log, OUT_DIR/tests.xml,
# OUT_DIR/stress.log, and OUT_DIR/done as the very last step (so the host can tell a guest that
# finished from one that died or hung).
set -uo pipefail

out=$1 build=$2 toolchain=$3 groups=$4
export VOLATILE_ADVERSARIAL_CYCLE_DIVISOR=${5:-1}
[[ $groups == all ]] && groups=memory,cache,pressure,sandbox,monitor,stress
has() { [[ ",$groups," == *",$1,"* ]]; }
result() { echo "$1=$2" >> "$out/result"; }
rm -f "$out/result" "$out/done"
: > "$out/result"

export PATH="$toolchain:$PATH"
export LD_LIBRARY_PATH="$toolchain/../lib/swift/linux${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HOME=/tmp TMPDIR=/tmp
# In the matrix a test that cannot get its cgroup is a failure, not a skip.
export VOLATILE_REQUIRE_PRESSURE_TESTS=1
cd /tmp

result version "$(uname -r)"
if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && ! grep -q ' - cgroup .*memory' /proc/self/mountinfo; then
    cgroup=v2
else
    cgroup=v1
fi
result cgroup "$cgroup"

# cgroup v2: delegate the memory controller down the path to two siblings, one holding this
# script and the tests (a leaf: v2 only gives controllers to children of a cgroup without
# processes of its own) and one empty folder the sandbox creates its children in.
matrix=""
if [[ $cgroup == v2 ]]; then
    root=/sys/fs/cgroup
    own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    # Enable +memory from the root down to our own cgroup's parent (the root may keep processes).
    path=$root
    for part in $(tr '/' ' ' <<< "${own%/*}"); do
        echo +memory > "$path/cgroup.subtree_control" 2>/dev/null || true
        path=$path/$part
    done
    matrix=$path/volatile-matrix-$$
    echo +memory > "$path/cgroup.subtree_control" || { echo "cannot enable memory in $path" >&2; }
    mkdir -p "$matrix/runner" "$matrix/sandbox"
    echo $$ > "$matrix/runner/cgroup.procs"
    echo +memory > "$matrix/cgroup.subtree_control"
    # Not in sandbox/cgroup.subtree_control: the sandbox enables it itself (its v2 path).
    export VOLATILE_SANDBOX_CGROUP_PARENT=$matrix/sandbox
    result sandbox_parent "$matrix/sandbox"
fi
cleanup() {
    rm -rf "${bin:-/nonexistent}"
    [[ -n $matrix ]] || return 0
    # Leave the folders: move back to the parent, then remove what the tests left behind.
    echo $$ > "${matrix%/*}/cgroup.procs" 2>/dev/null
    for dir in "$matrix"/sandbox/* "$matrix/sandbox" "$matrix/runner" "$matrix"; do
        [[ -d $dir ]] && rmdir "$dir" 2>/dev/null
    done
    return 0
}
trap cleanup EXIT

# Which features this kernel has, as the matrix line reports them.
result psi "$([[ -r /proc/pressure/memory ]] && echo yes || echo no)"
result unprivileged_userfaultfd "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null || echo absent)"

# ---- the test binary ----------------------------------------------------------------------
filters=()
has memory && filters+=(--filter 'VolatileMemoryTests\.')
has cache && filters+=(--filter 'VolatileCacheTests\.')
# The monitor's kernel tests (PSI triggers, cgroup v1 pressure levels) and its unit tests.
has monitor && ! has cache && filters+=(--filter 'VolatileCacheTests\.MemoryPressureMonitor')
# The sandbox and the pressure tests (volatile-stress children under a 128 MiB cgroup).
has pressure && filters+=(--filter 'VolatileCacheTestingTests\.(PressureTests|SandboxAvailabilityTests)')
# The sandbox's own tests (OOM kills, limit changes, kill and cancel) with python children.
has sandbox && filters+=(--filter 'VolatileCacheTestingTests\.(SandboxTests|sandboxEntryPoint)')
# Always: the kernel feature report (detection, populate method), which also checks that the
# fallbacks match what this kernel offers.
filters+=(--filter 'VolatileMemoryTests\.KernelFeatureTests')

# The test binary finds volatile-stress next to itself (/proc/self/exe): run a copy of it from a
# folder where the stress tool is the release build, when there is one. The stress workloads
# are timed (a few seconds each); a debug build under emulation never fills its working set.
bin=/tmp/volatile-matrix-bin-$$
mkdir -p "$bin"
cp "$build/VolatileCachePackageTests.xctest" "$bin/"
stress=$build/volatile-stress
[[ -x $build/../release/volatile-stress ]] && stress=$build/../release/volatile-stress
cp "$stress" "$bin/volatile-stress"
result stress_build "$(basename "$(dirname "$stress")")"

# Warm the guest's page cache: the first python3 start reads hundreds of files over 9p, which
# under emulation takes longer than the tests' timeouts for their python children.
python3 -c 'import mmap, sys' > /dev/null 2>&1
"$bin/volatile-stress" --help > /dev/null 2>&1
export VOLATILE_TEST_TIME_SCALE=${6:-1}

start=$(date +%s)
# One test at a time: an emulated guest has two slow vCPUs, and a serial log shows each result
# as it happens (and which test was running if the guest is stopped). A hang ends in a timeout.
timeout --kill-after=10 "${VOLATILE_MATRIX_TEST_TIMEOUT:-1800}" \
    "$bin/VolatileCachePackageTests.xctest" --testing-library swift-testing --no-parallel "${filters[@]}" \
    --xunit-output "$out/tests.xml" > "$out/tests.log" 2>&1
result tests_status $?
result tests_seconds $(( $(date +%s) - start ))

# ---- volatile-stress: a working set 4x a 128 MiB limit ---------------------------------------
if has stress; then
    start=$(date +%s)
    # 10 s on the host; 5 s per time-scale unit in guests, so 512 MiB are filled and reclaimed.
    seconds=$(( 5 * ${VOLATILE_TEST_TIME_SCALE%.*} )); (( seconds < 10 )) && seconds=10
    "$bin/volatile-stress" --seconds "$seconds" --working-set-mib 512 \
        --memory-limit-mib 128 --threads 2 --seed 7 --no-progress > "$out/stress.log" 2>&1
    result stress_status $?
    result stress_seconds $(( $(date +%s) - start ))
fi

echo ok > "$out/done"
