#!/usr/bin/env bash
# corio's network benchmarks beside the peer runtimes of ../shared/peers.
#
# Usage: bench/net.sh [w4] [w5] [w6] [--no-peers]   (none = all three)
# Env:   REPS=3          runs per point; the tables show medians
#        BUILD=build     where `make` built examples/http_hello and bench/net_bench
#        W4_SECONDS=10   wrk's -d (the peers' figures use 10)
#        W5_BYTES=1073741824, W6_N=10000
#        QUIET_WAIT=120  seconds to wait for an idle machine before each timed run
#        PEERS_DIR=../shared/peers  where the peers are (run.sh and its binaries)
#
# Workloads:
#   w4  HTTP/1.1 keep-alive hello world, exactly as ../shared/peers/run.sh's srv(): the server
#       pinned to CPU 0, a 2 s wrk warm-up, then REPS x `wrk -t1 -c100 -d10s --latency` pinned
#       to CPU 1 after waiting for an idle machine; req/s, latency, and the server process's
#       CPU % (utime+stime of it and its children, from /proc/PID/stat, over the 10 s).
#       corio: build/examples/http_hello on each backend (--backend io_uring, epoll). Peers
#       (when built; this script builds them with `../shared/peers/run.sh install build` if
#       any is missing, as bench/run.sh does): nginx (1 worker), libuv c/uv_http (the floor),
#       tokio-ct, go-1p, each started the way peers/run.sh starts it, on its port.
#   w5  N bytes (1 GiB) through one loopback TCP connection: corio (writer and reader tasks in
#       one loop, 256 KiB corio_send / corio_recv) on each backend, and two plain blocking
#       threads (net_bench w5 --plain: the kernel's limit). GB/s; every run checks the bytes.
#   w6  server RSS per idle keep-alive connection, 10,000 connections (net_bench w6): corio's
#       http_hello on each backend, plus libuv, tokio-ct and go-1p when built (--server-cmd).
# Raw runs go to $BUILD/bench/net_w4.tsv, net_w5.tsv, net_w6.tsv (net_bench's JSON lines to
# net_results.jsonl; wrk's outputs to net_wrk/). On a 2-CPU machine anything else running
# (a build, the tests) wrecks these figures: run it on an idle machine.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
BUILD=${BUILD:-build}
REPS=${REPS:-3}
W4_SECONDS=${W4_SECONDS:-10}
W5_BYTES=${W5_BYTES:-1073741824}
W6_N=${W6_N:-10000}
case $BUILD in /*) bdir=$BUILD ;; *) bdir=$root/$BUILD ;; esac
NET="$bdir/bench/net_bench"
HELLO="$bdir/examples/http_hello"
OUTDIR="$bdir/bench"
JSONL="$OUTDIR/net_results.jsonl"
WRKDIR="$OUTDIR/net_wrk"
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

usage() { echo "usage: bench/net.sh [w4] [w5] [w6] [--no-peers]" >&2; exit 2; }

peers=1
workloads=()
for a in "$@"; do
    case $a in
        --no-peers) peers=0 ;;
        w4|w5|w6) workloads+=("$a") ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $a" >&2; usage ;;
    esac
done
[ ${#workloads[@]} -eq 0 ] && workloads=(w4 w5 w6)
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "REPS must be a positive integer" >&2; exit 2; }
[[ $W4_SECONDS =~ ^[1-9][0-9]*$ ]] || { echo "W4_SECONDS must be a positive integer" >&2; exit 2; }
has() { [[ " ${workloads[*]} " == *" $1 "* ]]; }

for f in "$NET" "$HELLO"; do
    [ -x "$f" ] || { echo "$f is not built: run make first" >&2; exit 1; }
done
mkdir -p "$OUTDIR" "$WRKDIR"
unset CORIO_CLOCK CORIO_BACKEND   # real time; each corio run names its backend

# ---- tools: wrk, curl, taskset ----------------------------------------------------------------
if has w4; then
    missing=""
    command -v wrk >/dev/null || missing="$missing wrk"
    command -v curl >/dev/null || missing="$missing curl"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            echo "== installing:$missing"
            export DEBIAN_FRONTEND=noninteractive
            # shellcheck disable=SC2086
            apt-get install -y --no-install-recommends $missing >"$TMP/apt.log" 2>&1 ||
                { apt-get update >>"$TMP/apt.log" 2>&1 &&
                  apt-get install -y --no-install-recommends $missing >>"$TMP/apt.log" 2>&1; } ||
                { tail -5 "$TMP/apt.log" >&2; echo "cannot install:$missing" >&2; exit 1; }
        else
            echo "w4 needs:$missing (as root: apt-get install$missing)" >&2
            exit 1
        fi
    fi
    command -v taskset >/dev/null || { echo "w4 needs taskset (util-linux)" >&2; exit 1; }
    [ "$(nproc)" -ge 2 ] || { echo "w4 pins the server to CPU 0 and wrk to CPU 1: needs 2 CPUs" >&2; exit 1; }
fi

# ---- peers: find them, build them if some are missing ----------------------------------------------
PEERS=""
declare -A have
if [ "$peers" -eq 1 ]; then
    pd=${PEERS_DIR:-$root/../shared/peers}
    if [ -x "$pd/run.sh" ]; then
        PEERS=$(cd "$pd" && pwd)
    else
        echo "WARNING: no peers folder at $pd: corio's figures alone." >&2
    fi
fi
find_peers() {
    have=()
    command -v nginx >/dev/null && [ -f "$PEERS/nginx/nginx.conf" ] && have[nginx]=1
    [ -x "$PEERS/c/uv_http" ] && have[libuv]=1
    [ -x "$PEERS/rust/target/release/bench" ] && have[tokio-ct]=1
    [ -x "$PEERS/go/bench" ] && have[go-1p]=1
}
if [ -n "$PEERS" ]; then
    find_peers
    if [ ${#have[@]} -lt 4 ]; then
        echo "== building the peers in $PEERS (run.sh install build)"
        "$PEERS/run.sh" install build >"$TMP/peers_build.log" 2>&1 ||
            { echo "WARNING: '$PEERS/run.sh install build' failed (last lines below);" \
                   "using the peers that are built." >&2; tail -5 "$TMP/peers_build.log" >&2; }
        find_peers
    fi
    echo "== peers found: ${!have[*]}"
    mkdir -p "$PEERS/nginx/tmp"
fi

# ---- machine load (as peers/run.sh) ----------------------------------------------------------------
# quiet: wait (up to QUIET_WAIT s) until the machine is < 15 % busy over 1 s; warn if never.
# iowait counts as idle: a loop blocked in io_uring_enter shows as iowait on this kernel
# (100 % of a CPU while it serves nothing), and it uses no CPU.
quiet() {
    local _ a b
    for _ in $(seq "${QUIET_WAIT:-120}"); do
        read -r -a a </proc/stat; sleep 1; read -r -a b </proc/stat
        (( 100 * (b[4] + b[5] - a[4] - a[5]) >= 85 * ( (b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8]) ) )) && return 0
    done
    echo "WARNING: the machine never got quiet: $1 figures are contended" >&2
    contended+=("$1")
}
contended=()
# busy: "busy_jiffies total_jiffies" of cpu0 and cpu1
busy() { awk '$1=="cpu0"||$1=="cpu1"{t=0; for(i=2;i<=NF;i++) t+=$i; printf "%d %d ", t-$5-$6, t}' /proc/stat; }
# cpu_of PID: utime+stime jiffies of PID and its direct children (nginx's worker)
cpu_of() {
    local p t=0
    for p in $1 $(pgrep -P "$1"); do t=$((t + $(awk '{s=$0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13]}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo $t
}

# ---- W4 ----------------------------------------------------------------------------------------------
W4TSV="$OUTDIR/net_w4.tsv"
w4keys=()
HZ=$(getconf CLK_TCK)

# srv NAME PORT CMD...: the server pinned to CPU 0 (started in the peers folder, as run.sh does),
# REPS wrk runs pinned to CPU 1; one row per run in $W4TSV.
srv() {
    local name=$1 port=$2 r f dir=${PEERS:-$root}; shift 2
    local url="http://127.0.0.1:$port/"
    if curl -s -o /dev/null --max-time 2 "$url"; then
        echo "port $port already in use; skipping $name" >&2
        return 1
    fi
    w4keys+=("$name")
    (cd "$dir" && exec taskset -c 0 "$@") >"$TMP/server_$name.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do curl -s -o /dev/null --max-time 1 "$url" && break; sleep 0.1; done
    curl -s --max-time 2 "$url" | grep -q 'Hello, World!' || echo "WARNING: $name: bad response" >&2
    taskset -c 1 wrk -t1 -c100 -d2s "$url" >/dev/null
    for r in $(seq "$REPS"); do
        f="$WRKDIR/wrk_${name}_$r.txt"
        local b0 b1 c0 c1
        quiet "w4 $name"
        read -r -a b0 < <(busy); c0=$(cpu_of "$SERVER_PID")
        taskset -c 1 wrk -t1 -c100 -d"${W4_SECONDS}s" --latency "$url" >"$f"
        read -r -a b1 < <(busy); c1=$(cpu_of "$SERVER_PID")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" \
            "$(awk '/Requests\/sec/{print $2}' "$f")" \
            "$(awk '$1=="Latency"{print $2; exit}' "$f")" \
            "$(awk '$1=="99%"{print $2}' "$f")" \
            "$(grep -E 'Socket errors|Non-2xx' "$f" | tr '\n' ' ')" \
            $(( 100 * (b1[0] - b0[0]) / (b1[1] - b0[1]) )) $(( 100 * (b1[2] - b0[2]) / (b1[3] - b0[3]) )) \
            $(( (c1 - c0) * 100 / HZ / W4_SECONDS )) | tee -a "$W4TSV"
    done
    kill "$SERVER_PID" 2>/dev/null || echo "WARNING: $name: the server had died" >&2
    wait "$SERVER_PID"
    local st=$?
    SERVER_PID=""
    # corio's servers end cleanly on SIGTERM (exit 0); the others die of it (143)
    [[ $name == corio-* && $st -ne 0 ]] && echo "WARNING: $name exited $st on SIGTERM" >&2
    sleep 0.5
}

run_w4() {
    printf 'server\trep\treq_s\tlatency_avg\tp99\terrors\tcpu0_pct\tcpu1_pct\tserver_cpu_pct\n' >"$W4TSV"
    srv corio-io_uring 8090 "$HELLO" 8090 --backend io_uring
    srv corio-epoll 8091 "$HELLO" 8091 --backend epoll
    [ -n "${have[nginx]:-}" ] && srv nginx 8087 nginx -p nginx/ -c nginx.conf
    [ -n "${have[libuv]:-}" ] && srv libuv 8086 c/uv_http 8086
    [ -n "${have[tokio-ct]:-}" ] && srv tokio-ct 8085 rust/target/release/bench w4 8085
    [ -n "${have[go-1p]:-}" ] && srv go-1p 8084 env GOMAXPROCS=1 go/bench w4 8084
    return 0
}

# ---- W5 and W6: net_bench runs ------------------------------------------------------------------------
W5TSV="$OUTDIR/net_w5.tsv"
W6TSV="$OUTDIR/net_w6.tsv"
w5keys=()
w6keys=()
jfield() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" <<<"$2"; }

nb() {  # nb NET_BENCH_ARGS...: one net_bench run: its JSON line, or nothing if it failed
    local out
    if out=$(timeout 600 "$NET" "$@" 2>"$TMP/err"); then
        echo "$out" >>"$JSONL"
        echo "$out"
    else
        echo "FAILED (exit $?): net_bench $*: $(tail -3 "$TMP/err")" >&2
    fi
}
na() { echo "${1:-NA}"; }

w5run() {  # w5run NAME ARGS...
    local name=$1 r out; shift
    w5keys+=("$name")
    for r in $(seq "$REPS"); do
        quiet "w5 $name"
        out=$(nb w5 "$W5_BYTES" "$@")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$W5_BYTES" "$(na "$(jfield wall_s "$out")")" \
            "$(na "$(jfield gb_s "$out")")" "$(na "$(jfield rss_kb "$out")")" | tee -a "$W5TSV"
    done
}

run_w5() {
    printf 'runtime\trep\tbytes\twall_s\tgb_s\trss_kb\n' >"$W5TSV"
    w5run corio-io_uring --backend io_uring
    w5run corio-epoll --backend epoll
    w5run plain-threads --plain
}

w6run() {  # w6run NAME ARGS...
    local name=$1 r out; shift
    w6keys+=("$name")
    for r in $(seq "$REPS"); do
        out=$(nb w6 "$W6_N" "$@")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$W6_N" \
            "$(na "$(jfield kib_per_conn "$out")")" "$(na "$(jfield rss_before_kb "$out")")" \
            "$(na "$(jfield rss_kb "$out")")" "$(na "$(jfield wall_s "$out")")" \
            "$(na "$(jfield server_exit "$out")")" | tee -a "$W6TSV"
    done
}

q() { printf '%q' "$1"; }   # a path quoted for net_bench's /bin/sh -c

run_w6() {
    printf 'server\trep\tn\tkib_per_conn\trss_before_kb\trss_kb\topen_s\tserver_exit\n' >"$W6TSV"
    w6run corio-io_uring --server "$HELLO" --backend io_uring
    w6run corio-epoll --server "$HELLO" --backend epoll
    [ -n "${have[libuv]:-}" ] && w6run libuv --name libuv --server-cmd "$(q "$PEERS/c/uv_http") {port}"
    [ -n "${have[tokio-ct]:-}" ] &&
        w6run tokio-ct --name tokio-ct --server-cmd "$(q "$PEERS/rust/target/release/bench") w4 {port}"
    [ -n "${have[go-1p]:-}" ] &&
        w6run go-1p --name go-1p --server-cmd "env GOMAXPROCS=1 $(q "$PEERS/go/bench") w4 {port}"
    return 0
}

# ---- run -------------------------------------------------------------------------------------------------
: >"$JSONL"
echo "== $(date -u '+%F %T') UTC, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS"
for w in "${workloads[@]}"; do
    echo "== $w"
    "run_$w"
done

# ---- summary ------------------------------------------------------------------------------------------------
median() {  # median of the numbers on stdin, or NA
    grep -E '^-?[0-9.]+([eE][-+]?[0-9]+)?$' | sort -g |
        awk '{v[NR]=$1} END{if(!NR){print "NA"; exit} if(NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
col() { awk -F'\t' -v k="$2" -v f="$3" 'NR>1 && $1==k {print $f}' "$1"; }   # col TSV KEY FIELD
to_ms() { awk '{v=$1; if (v ~ /us$/) printf "%.3f\n", v/1000; else if (v ~ /ms$/) printf "%.3f\n", v+0; else if (v ~ /s$/) printf "%.3f\n", v*1000}'; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN{ if (x=="NA" || x=="") print "NA"; else printf f, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA" || b=="NA" || b+0==0) print "-"; else printf "%.2f", a/b }'; }

echo
echo "## corio's network benchmarks vs peers: medians of $REPS run(s), $(date -u '+%F %T') UTC"
if has w4 && [ ${#w4keys[@]} -gt 0 ]; then
    ref=corio-io_uring
    for k in "${w4keys[@]}"; do [ "$k" = libuv ] && ref=libuv; done
    ref_rps=$(col "$W4TSV" "$ref" 3 | median)
    ref_cpu=$(col "$W4TSV" "$ref" 9 | median)
    ref_eff=$(awk -v r="$ref_rps" -v c="$ref_cpu" 'BEGIN{ if (r=="NA" || c=="NA" || c+0==0) print "NA"; else print r/(c/100) }')
    echo
    echo "W4: HTTP hello, server on CPU 0, wrk -t1 -c100 -d${W4_SECONDS}s on CPU 1"
    echo
    echo "| server | req/s | latency avg ms | p99 ms | server CPU % | wrk CPU 1 % | req per server CPU-second | req/s vs $ref | req per CPU-s vs $ref |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for k in "${w4keys[@]}"; do
        rps=$(col "$W4TSV" "$k" 3 | median)
        lat=$(col "$W4TSV" "$k" 4 | to_ms | median)
        p99=$(col "$W4TSV" "$k" 5 | to_ms | median)
        cpu=$(col "$W4TSV" "$k" 9 | median)
        cpu1=$(col "$W4TSV" "$k" 8 | median)
        eff=$(awk -v r="$rps" -v c="$cpu" 'BEGIN{ if (r=="NA" || c=="NA" || c+0==0) print "NA"; else print r/(c/100) }')
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$k" "$(fmt "$rps" %.0f)" \
            "$(fmt "$lat" %.3f)" "$(fmt "$p99" %.3f)" "$(fmt "$cpu" %.0f)" "$(fmt "$cpu1" %.0f)" \
            "$(fmt "$eff" %.0f)" "$(ratio "$rps" "$ref_rps")" "$(ratio "$eff" "$ref_eff")"
    done
    errs=$(awk -F'\t' 'NR>1 && $6 != "" {print $1 " rep " $2 ": " $6}' "$W4TSV")
    [ -n "$errs" ] && { echo; echo "wrk reported errors:"; echo "$errs"; }
    echo
    echo "Where wrk CPU 1 is near 100 %, the one wrk thread is the bottleneck, not the server: compare"
    echo "req per server CPU-second there (peers/RESULTS.md). Server CPU % counts its children (nginx's worker)."
fi
if has w5 && [ ${#w5keys[@]} -gt 0 ]; then
    ref=$(col "$W5TSV" plain-threads 5 | median)
    echo
    echo "W5: $(awk -v b="$W5_BYTES" 'BEGIN{printf "%.2f GiB", b/1073741824}') through one loopback TCP connection (256 KiB sends and recvs)"
    echo
    echo "| runtime | GB/s | wall s | peak RSS MiB | vs plain threads |"
    echo "|---|---|---|---|---|"
    for k in "${w5keys[@]}"; do
        g=$(col "$W5TSV" "$k" 5 | median); wl=$(col "$W5TSV" "$k" 4 | median); rs=$(col "$W5TSV" "$k" 6 | median)
        printf '| %s | %s | %s | %s | %s |\n' "$k" "$(fmt "$g" %.2f)" "$(fmt "$wl" %.3f)" \
            "$(awk -v r="$rs" 'BEGIN{ if (r=="NA") print "NA"; else printf "%.1f", r/1024 }')" "$(ratio "$g" "$ref")"
    done
    echo
    echo "corio: writer and reader are two tasks of one loop on one thread; plain threads: a blocking"
    echo "write loop and read loop on two threads (two CPUs). Every run checked the bytes it got."
fi
if has w6 && [ ${#w6keys[@]} -gt 0 ]; then
    ref=$(col "$W6TSV" corio-io_uring 4 | median)
    echo
    echo "W6: server RSS per idle keep-alive connection, $W6_N connections (each served one request)"
    echo
    echo "| server | KiB/connection | RSS before MiB | RSS with connections MiB | open+request s | vs corio-io_uring | exit on SIGTERM |"
    echo "|---|---|---|---|---|---|---|"
    for k in "${w6keys[@]}"; do
        kb=$(col "$W6TSV" "$k" 4 | median); r0=$(col "$W6TSV" "$k" 5 | median)
        r1=$(col "$W6TSV" "$k" 6 | median); op=$(col "$W6TSV" "$k" 7 | median)
        ex=$(col "$W6TSV" "$k" 8 | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%s (x%d)", (NR>1?", ":""), substr($0,2), c}')
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$k" "$(fmt "$kb" %.2f)" \
            "$(awk -v r="$r0" 'BEGIN{ if (r=="NA") print "NA"; else printf "%.1f", r/1024 }')" \
            "$(awk -v r="$r1" 'BEGIN{ if (r=="NA") print "NA"; else printf "%.1f", r/1024 }')" \
            "$(fmt "$op" %.3f)" "$(ratio "$kb" "$ref")" "$ex"
    done
    echo
    echo "KiB/connection = (server VmRSS with the connections - VmRSS after one warm-up request) / N;"
    echo "kernel socket memory is not in it. corio's per-connection cost is its task: the touched pages of"
    echo "its stack (the 4 KiB request buffer lives there) and the task record."
fi
[ -z "$PEERS" ] && echo "(no peer figures: corio alone)"
[ ${#contended[@]} -gt 0 ] && echo "CONTENDED (the machine was busy; rerun when idle): ${contended[*]}"
echo "raw runs: $OUTDIR/net_w{4,5,6}.tsv; net_bench's JSON lines: $JSONL; wrk outputs: $WRKDIR"
# a run that failed left NA (w5, w6) or no req/s (w4) in its row
failed=0
has w4 && failed=$((failed + $(awk -F'\t' 'NR>1 && $3 == ""' "$W4TSV" | wc -l)))
has w5 && failed=$((failed + $(awk -F'\t' 'NR>1 && /\tNA(\t|$)/' "$W5TSV" | wc -l)))
has w6 && failed=$((failed + $(awk -F'\t' 'NR>1 && /\tNA(\t|$)/' "$W6TSV" | wc -l)))
if [ "$failed" -gt 0 ]; then
    echo "WARNING: $failed run(s) failed or printed no figure" >&2
    exit 1
fi
