#!/usr/bin/env bash
# corio demo: the seed's asyncio programs translated to C, run on real time, a network
# demo on the loopback, then 100,000 concurrent sleepers. Meant for a fresh Debian 12 machine:
#
#   scripts/demo.sh        (or `make demo`)
#
# 1. checks for gcc, make and liburing-dev; installs what is missing with apt-get when run
#    as root, otherwise prints the apt-get command to run and exits 1;
# 2. builds everything with make;
# 3. runs the seed programs (each prints its output, and its elapsed time to stderr);
# 4. the network demo on 127.0.0.1: echo_server and http_hello talked to with bash's
#    /dev/tcp (and curl if installed), then fetcher (the seed's fetches over real TCP);
# 5. runs examples/scale_demo, with private stacks and then with compact tasks.
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
# examples/echo_server and examples/http_hello on 127.0.0.1, each on a port the kernel picks,
# talked to with bash's /dev/tcp (and curl, if installed), then stopped with SIGINT: each
# closes its listener, cancels its connection tasks and exits 0. The trap stops them however
# the demo ends.
net_tmp=$(mktemp -d)
server_pid=""
net_cleanup() {
    local _
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$net_tmp"
}
trap net_cleanup EXIT

start_server() {  # start_server NAME: run examples/NAME on port 0; sets $port, $server_pid
    local prog="$BUILD/examples/$1" _
    if [ ! -x "$prog" ]; then echo "not built: $prog" >&2; exit 1; fi
    : >"$net_tmp/$1.out"   # there before the server starts writing: sed below can read it
    "$prog" 0 >>"$net_tmp/$1.out" 2>&1 &
    server_pid=$!
    port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\) (backend.*/\1/p' "$net_tmp/$1.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then echo "$1 did not start:" >&2; cat "$net_tmp/$1.out" >&2; exit 1; fi
    cat "$net_tmp/$1.out"
}

stop_server() {  # stop_server NAME: SIGINT, up to 5 s to exit 0, then show what it said
    local _ rc=0
    kill -INT "$server_pid"
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -KILL "$server_pid" 2>/dev/null; then echo "$1 did not stop on SIGINT: killed" >&2; fi
    wait "$server_pid" || rc=$?
    server_pid=""
    tail -n +2 "$net_tmp/$1.out"
    if [ "$rc" -ne 0 ]; then echo "$1 exited with status $rc" >&2; exit 1; fi
}

header "a TCP echo server, one task per connection: two clients at once, echoed line by line"
start_server echo_server
exec 3<>"/dev/tcp/127.0.0.1/$port" 4<>"/dev/tcp/127.0.0.1/$port"
printf 'hello from client 1\n' >&3
printf 'hello from client 2\n' >&4
for fd in 4 3; do
    IFS= read -r -t 5 -u "$fd" reply || { echo "no echo on connection $fd" >&2; exit 1; }
    echo "echoed: $reply"
done
exec 4>&-   # client 2 leaves; client 1 is still connected when the server stops
stop_server echo_server
exec 3>&-

header "an HTTP/1.1 keep-alive server (the W4 benchmark's): one request, then three pipelined"
start_server http_hello
if command -v curl >/dev/null 2>&1; then
    curl -sS -i --max-time 5 "http://127.0.0.1:$port/"
    echo
else
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 1 cat <&3 || true   # keep-alive: the server leaves the connection open
    echo
    exec 3>&-
fi
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n' >&3
timeout 1 cat <&3 >"$net_tmp/pipelined.txt" || true
exec 3>&-
echo "three pipelined requests on one connection: $(grep -o 'Hello, World!' "$net_tmp/pipelined.txt" | wc -l) responses"
stop_server http_hello

header "the seed's three fetches over real TCP: one after another (~3 s), then concurrently (~1 s)"
run fetcher 1

# ---- 5. scale -------------------------------------------------------------------------------------
header "100,000 concurrent tasks each sleeping 1 s on real time: expect a little over 1 s"
run scale_demo
header "the same 100,000 as compact tasks: one shared stack, a few hundred bytes each while asleep"
run scale_demo --compact

header "demo done"
