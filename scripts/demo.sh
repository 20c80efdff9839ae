#!/usr/bin/env bash
# corio demo: the seed's asyncio programs translated to C, run on real time, then 100,000
# concurrent sleepers. Meant for a fresh Debian 12 machine:
#
#   scripts/demo.sh        (or `make demo`)
#
# 1. checks for gcc, make and liburing-dev; installs what is missing with apt-get when run
#    as root, otherwise prints the apt-get command to run and exits 1;
# 2. builds everything with make;
# 3. runs the seed programs (each prints its output, and its elapsed time to stderr);
# 4. runs examples/scale_demo.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
MAKE=${MAKE:-make}
# BUILD (optional): the build folder to use, as in `make BUILD=...`; default build/
if [ -n "${BUILD:-}" ]; then make_args=("BUILD=$BUILD"); else BUILD=build make_args=(); fi

header() { printf '\n=== %s\n' "$*"; }

# ---- 1. prerequisites -------------------------------------------------------------------
header "prerequisites: gcc, make, liburing-dev"
need="gcc make liburing-dev"
if command -v dpkg >/dev/null 2>&1; then
    missing=""
    for p in $need; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    missing=${missing# }
    if [ -n "$missing" ]; then
        if [ "$(id -u)" -eq 0 ]; then
            echo "installing: $missing"
            export DEBIAN_FRONTEND=noninteractive
            # shellcheck disable=SC2086
            apt-get install -y --no-install-recommends $missing ||
                { apt-get update && apt-get install -y --no-install-recommends $missing; }
        else
            echo "missing packages: $missing" >&2
            echo "install them as root, then run this again:" >&2
            echo "    sudo apt-get update && sudo apt-get install -y $missing" >&2
            exit 1
        fi
    else
        echo "all present"
    fi
else
    echo "no dpkg here (not Debian?): make sure gcc, make and liburing (headers) are installed" >&2
    for c in gcc make; do
        command -v "$c" >/dev/null 2>&1 || { echo "missing: $c" >&2; exit 1; }
    done
fi

# ---- 2. build -----------------------------------------------------------------------------
header "building corio, its examples and benchmarks (make ${make_args[*]:-})"
# (under `make demo` this inner make sees the outer one's variables through MAKEFLAGS)
"$MAKE" ${make_args[@]+"${make_args[@]}"}

# The seed programs must run on the real clock (the tests set CORIO_CLOCK=virtual).
unset CORIO_CLOCK

run() {  # run PROGRAM [ARGS...]: run one built example, stop the demo if it fails
    local prog="$BUILD/examples/$1"; shift
    if [ ! -x "$prog" ]; then echo "not built: $prog" >&2; exit 1; fi
    # line-buffered stdout, so its lines stay in order with its stderr when piped (| tee)
    if command -v stdbuf >/dev/null 2>&1; then stdbuf -oL "$prog" "$@"; else "$prog" "$@"; fi
}

# ---- 3. the seed programs --------------------------------------------------------------------
header "awaiting coroutines one after the other: fetch (2 s) then compute (1 s): expect about 3 s"
run seed_process_data

header "three 3 s fetches one after another (await each coroutine): expect about 9 s"
run seed_sequential

header "the same three 3 s fetches as concurrent tasks (create_task, then await): expect about 3 s"
run seed_concurrent

header "making a coroutine object runs nothing until a loop runs it: expect it instant"
run seed_coroutine_object

# ---- 4. network demo ----------------------------------------------------------------------------
# NETWORK DEMO: reserved for a later issue (e.g. an echo or HTTP server and a client
# talking to it over TCP). Add its section here, between the seed programs and the scale demo.

# ---- 5. scale -------------------------------------------------------------------------------------
header "100,000 concurrent tasks each sleeping 1 s on real time: expect a little over 1 s"
run scale_demo

header "demo done"
