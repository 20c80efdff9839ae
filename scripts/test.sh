#!/usr/bin/env bash
# scripts/test.sh - corio's whole test command (what `make test` and .ci/run run).
#
# Installs what it needs (Debian packages, when run as root), then builds and
# runs the test suite in each variant:
#   native    -O2, -Wall -Wextra -Werror, the assembly context switch
#   asan      AddressSanitizer + UndefinedBehaviorSanitizer (fiber-annotated switches)
#   ucontext  the portable ucontext switch instead of the assembly
#   arm64     cross-built with gcc-aarch64-linux-gnu, run under qemu-user
#   valgrind  the native suite under valgrind, leak-checked (stacks registered)
# Usage: scripts/test.sh [variant...]   (default: all five, in that order)
# Ends with one line "total: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

variants=${*:-native asan ucontext arm64 valgrind}
jobs=$(nproc 2>/dev/null || echo 2)
passed=0 failed=0 broken=()

need_packages $CORIO_BUILD_PACKAGES || exit 1

# run_suite NAME MAKEARGS -- ENV... -- CMD...: build, run, add up its closing line
run_suite() {
    local name=$1 log="build/test-$1.log" build_dir=$2; shift 2
    local make_args=() env_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do make_args+=("$1"); shift; done; shift
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do env_args+=("$1"); shift; done; shift
    echo "== $name: building"
    mkdir -p build
    if ! make -j"$jobs" "${make_args[@]}" >"build/make-$name.log" 2>&1; then
        tail -30 "build/make-$name.log"
        echo "== $name: BUILD FAILED (log: build/make-$name.log)"
        broken+=("$name"); return
    fi
    echo "== $name: running"
    env CORIO_BUILD="$build_dir" "${env_args[@]}" "$@" 2>&1 | tee "$log" | grep -Ev '^ok |^--[0-9]+-- '
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "== $name: the runner printed no closing line"
        broken+=("$name"); return
    fi
    local p f
    read -r p _ f _ <<<"${line//,/}"
    passed=$((passed + p)); failed=$((failed + f))
    [ "$p" -gt 0 ] || broken+=("$name (ran no test)")
}

for v in $variants; do
    case $v in
    native)   run_suite native build -- -- build/test/corio_tests ;;
    asan)     run_suite asan build/asan SAN=asan -- CORIO_TEST_LIGHT=1 -- build/asan/test/corio_tests ;;
    ucontext) run_suite ucontext build/ucontext SWITCH=ucontext -- -- build/ucontext/test/corio_tests ;;
    arm64)
        if need_packages $CORIO_ARM64_PACKAGES; then
            run_suite arm64 build/arm64 CROSS=aarch64 -- \
                QEMU_LD_PREFIX=/usr/aarch64-linux-gnu CORIO_TEST_EXEC_WRAPPER=qemu-aarch64-static \
                CORIO_TEST_LIGHT=1 CORIO_TEST_TIMEOUT_SCALE=20 -- \
                qemu-aarch64-static build/arm64/test/corio_tests
        else
            broken+=("arm64 (packages missing)")
        fi ;;
    valgrind)
        if need_packages valgrind; then
            run_suite valgrind build -- CORIO_TEST_LIGHT=1 CORIO_TEST_TIMEOUT_SCALE=20 -- \
                valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                build/test/corio_tests
        else
            broken+=("valgrind (package missing)")
        fi ;;
    *) echo "unknown variant: $v" >&2; exit 2 ;;
    esac
done

[ ${#broken[@]} -eq 0 ] || echo "broken: ${broken[*]}"
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#broken[@]} -eq 0 ] && [ "$passed" -gt 0 ]
