#!/usr/bin/env bash
# corio's benchmarks beside the peer runtimes of ../shared/peers (Go, Tokio, Node, libuv).
#
# Usage: bench/run.sh [--no-peers] [mem] [w1] [w2] [w2b] [w2c] [w3] [w3i] [lock]   (none = all eight)
# Env:   REPS=3        runs per point; the table shows medians
#        PEERS_SLOW=1  add asyncio and uvloop (tens of seconds per W1 run)
#        BUILD=build   where corio_bench was built (`make` does it; `make bench` runs this)
#
# Workloads (corio: build/bench/corio_bench; peers: the commands of ../shared/peers/run.sh):
#   mem  the machine's price of fresh memory: 100,000 pages touched once each, one per 64 KiB
#        (no corio call). w1 and w3 pay it for every page they touch first; on this VM it has
#        ranged from ~1 us to ~15 us per page, so read w1 and w3 beside it; corio-huge: the
#        same in memory advised to 2 MiB pages (corio_bench memhuge), as src/mem.c uses
#   w1   1,000,000 tasks each sleep 1 s, plus N=0 for the RSS baseline;
#        RSS/task = (peak RSS - peak RSS at N=0) / N; corio runs it twice: with private
#        stacks (corio) and with compact sleepers (corio-compact: corio_bench w1c)
#   w2   ping-pong: 10,000,000 round trips of one item between two tasks through two queues
#        of capacity 1 (peers run 1,000,000, asyncio and uvloop 200,000, as in peers/run.sh;
#        their channels: Go unbuffered, Tokio mpsc::channel(1), asyncio Queue(1), Node unbounded)
#   w2b  10,000,000 yields (peers that are slow at it run 1,000,000, as in peers/run.sh)
#   w2c  10,000,000 items from 1,000 producers to 1,000 consumers through one queue of
#        capacity 1,000; ns/op = ns per item, items/s = 1e9 / ns/op (corio only)
#   w3   spawn 1,000,000 tasks returning 2*i, await them all, check the sum
#   w3i  10,000,000 times spawn one task and await it (corio only: the peers have no w3i)
#   lock 10,000,000 acquisitions of one lock handed over among 10,000 tasks that all wait
#        in line (FIFO handoff); ns/op = ns per acquisition (corio only; CORIO_BENCH_LOCK=yield
#        in the environment yields inside every hold). The header of bench/corio_bench.c says
#        exactly what each corio workload times.
# Every time is taken inside the program (workload only, no process start-up); ns/op =
# time / N. Peers' peak RSS comes from /usr/bin/time -v, corio's from its own getrusage.
# Raw runs go to $BUILD/bench/results.tsv (and corio's JSON lines to results.jsonl).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
BUILD=${BUILD:-build}
REPS=${REPS:-3}
case $BUILD in /*) bdir=$BUILD ;; *) bdir=$root/$BUILD ;; esac
CORIO="$bdir/bench/corio_bench"
OUTDIR="$bdir/bench"
TSV="$OUTDIR/results.tsv"
JSONL="$OUTDIR/results.jsonl"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

usage() { echo "usage: bench/run.sh [--no-peers] [mem] [w1] [w2] [w2b] [w2c] [w3] [w3i] [lock]" >&2; exit 2; }

peers=1
workloads=()
for a in "$@"; do
    case $a in
        --no-peers) peers=0 ;;
        mem|w1|w2|w2b|w2c|w3|w3i|lock) workloads+=("$a") ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $a" >&2; usage ;;
    esac
done
[ ${#workloads[@]} -eq 0 ] && workloads=(mem w1 w2 w2b w2c w3 w3i lock)
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "REPS must be a positive integer" >&2; exit 2; }

if [ ! -x "$CORIO" ]; then
    echo "$CORIO is not built: run make first (or make bench)" >&2
    exit 1
fi
mkdir -p "$OUTDIR"
unset CORIO_CLOCK   # real time: under CORIO_CLOCK=virtual, w1's sleeps would take no time

# ---- peers: find, install and build them --------------------------------------------------
PEERS=""
if [ "$peers" -eq 1 ]; then
    if [ -d "$root/../shared/peers" ] && [ -x "$root/../shared/peers/run.sh" ]; then
        PEERS=$(cd "$root/../shared/peers" && pwd)
        echo "== installing and building the peers in $PEERS (run.sh install build)"
        if ! "$PEERS/run.sh" install build >"$TMP/peers_build.log" 2>&1; then
            echo "WARNING: '$PEERS/run.sh install build' failed (last lines below);" \
                 "showing corio's figures alone." >&2
            tail -5 "$TMP/peers_build.log" >&2
            PEERS=""
        fi
    else
        echo "WARNING: no peers folder at $root/../shared/peers: showing corio's figures alone." >&2
    fi
fi
if [ -n "$PEERS" ] && [ ! -x /usr/bin/time ]; then
    echo "WARNING: /usr/bin/time is missing: peers' RSS will show as NA" >&2
fi

# ---- machine load ------------------------------------------------------------------------------
# busy_pct: percentage of all CPUs busy over the next second (from /proc/stat)
busy_pct() {
    local a b
    read -r -a a </proc/stat; sleep 1; read -r -a b </proc/stat
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
    local total=$(( (b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8]) ))
    [ "$total" -gt 0 ] || { echo 0; return; }
    echo $(( 100 * (total - idle) / total ))
}
# quiet: wait up to QUIET_WAIT seconds (default 20) for the machine to be < 15 % busy over
# a second (like peers/run.sh's quiet()); warn when it never gets there. Sets $load.
load=0
quiet() {
    local _
    for _ in $(seq "${QUIET_WAIT:-20}"); do
        load=$(busy_pct)
        [ "$load" -lt 15 ] && return 0
    done
    echo "WARNING: the machine is busy ($load % of all CPUs over the last second) before" \
         "timing $1: its figures may be slower than on an idle machine. Busiest processes:" >&2
    ps -eo pcpu,pid,comm --sort=-pcpu | sed -n '2,4p' >&2
}

# cpu_now: "busy_jiffies_all_cpus our_children_jiffies" (our children: waited-for descendants)
cpu_now() {
    local s; s=$(<"/proc/$$/stat"); s=${s##*) }
    awk -v kids="$(awk '{print $14 + $15}' <<<"$s")" \
        '$1=="cpu"{print $2+$3+$4+$7+$8+$9, kids; exit}' /proc/stat
}
# others_check W BEFORE...: warn when processes other than ours were busy while W ran
others_check() {
    local w=$1 b0=$2 k0=$3 t0=$4 b1 k1 t1 pct
    read -r b1 k1 < <(cpu_now); t1=$(date +%s.%N)
    pct=$(awk -v b="$((b1 - b0 - (k1 - k0)))" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN{ if (t <= 0) print 0; else printf "%d", 100 * b / hz / t }')
    [ -n "${DEBUG_OTHERS:-}" ] && echo "others: busy $((b1 - b0)) ours $((k1 - k0)) pct $pct" >&2
    if [ "$pct" -ge 20 ] && [ $((b1 - b0 - (k1 - k0))) -ge 5 ]; then
        echo "WARNING: other processes used about $pct % of a CPU while $w ran: its figures are contended" >&2
        contended+=("$w (others used ~$pct % of a CPU)")
    fi
}

contended=()

# ---- running ---------------------------------------------------------------------------------------
keys=()   # "workload runtime n d" of each measured point, in the order measured
printf 'runtime\tworkload\tn\td\trep\telapsed_s\trss_kb\tns_per_op\tbusy_pct_before\n' >"$TSV"
: >"$JSONL"

record() {  # record RUNTIME W N D REP ELAPSED RSS
    local nsop=NA
    if [ "$6" != NA ] && [ "$3" -gt 0 ]; then nsop=$(awk -v e="$6" -v n="$3" 'BEGIN{printf "%.2f", e*1e9/n}'); fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$nsop" "$load" >>"$TSV"
    printf '  %-18s %-4s n=%-9s d=%-2s rep %s: elapsed %s s, peak RSS %s KiB, %s ns/op\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$nsop"
}
addkey() { local k="$*" x; for x in "${keys[@]:+${keys[@]}}"; do [ "$x" = "$k" ] && return; done; keys+=("$k"); }

corio() {  # corio W N [D]; RT=label BW=workload: run corio_bench BW, listed as runtime RT under W
    local w=$1 n=$2 d=${3:-0} r out el rss rt=${RT:-corio} bw=${BW:-$1}
    addkey "$w $rt $n $d"
    for r in $(seq "$REPS"); do
        if out=$(timeout 600 "$CORIO" "$bw" "$n" ${3:+"$3"} 2>"$TMP/err"); then
            echo "$out" >>"$JSONL"
            el=$(sed -n 's/.*"wall_s":\([0-9.eE+-]*\).*/\1/p' <<<"$out")
            rss=$(sed -n 's/.*"rss_kb":\([0-9]*\).*/\1/p' <<<"$out")
        else
            echo "FAILED (exit $?): corio_bench $bw $n ${3:-}: $(tail -3 "$TMP/err")" >&2
            el=NA rss=NA
        fi
        record "$rt" "$w" "$n" "$d" "$r" "${el:-NA}" "${rss:-NA}"
    done
}

peer() {  # peer NAME W N D CMD... (run in the peers folder, as peers/run.sh does)
    local name=$1 w=$2 n=$3 d=$4 r out el rss; shift 4
    [ -n "$PEERS" ] || return 0
    addkey "$w $name $n $d"
    for r in $(seq "$REPS"); do
        rm -f "$TMP/time.txt"
        if [ -x /usr/bin/time ]; then
            out=$(cd "$PEERS" && timeout 300 /usr/bin/time -v -o "$TMP/time.txt" "$@" 2>"$TMP/err")
        else
            out=$(cd "$PEERS" && timeout 300 "$@" 2>"$TMP/err")
        fi || echo "FAILED: $name $w $n $d: $(tail -2 "$TMP/err")" >&2
        el=$(sed -n 's/^elapsed_s=//p' <<<"$out")
        rss=$(awk -F': ' '/Maximum resident/{print $2}' "$TMP/time.txt" 2>/dev/null)
        record "$name" "$w" "$n" "$d" "$r" "${el:-NA}" "${rss:-NA}"
    done
}

slow() { [ "${PEERS_SLOW:-0}" = 1 ]; }
GO="go/bench" RS="rust/target/release/bench" JS="node/bench.js"

run_w1() {
    local n
    for n in 0 1000000; do
        corio w1 $n 1
        RT=corio-compact BW=w1c corio w1 $n 1   # compact sleepers (corio_task_opts.compact)
        peer go-1p w1 $n 1 env GOMAXPROCS=1 $GO w1 $n 1
        peer tokio-ct w1 $n 1 $RS w1 $n 1
        peer node w1 $n 1 node $JS w1 $n 1
        peer libuv w1 $n 1 c/uv_sleep $n 1
        if slow; then
            peer asyncio w1 $n 1 python3 py/bench.py w1 $n 1
            peer uvloop w1 $n 1 /usr/bin/python3 py/bench.py --uvloop w1 $n 1
        fi
    done
}
run_w2() {  # the peers' channels: see the header; tokio-ct-spawned ping-pongs from a spawned task
    corio w2 10000000
    peer go-1p w2 1000000 0 env GOMAXPROCS=1 $GO w2 1000000
    peer tokio-ct w2 1000000 0 $RS w2 1000000
    peer tokio-ct-spawned w2 1000000 0 env SPAWN=1 $RS w2 1000000
    peer node w2 1000000 0 node $JS w2 1000000
    if slow; then
        peer asyncio w2 200000 0 python3 py/bench.py w2 200000
        peer uvloop w2 200000 0 /usr/bin/python3 py/bench.py --uvloop w2 200000
    fi
}
run_w2b() {
    corio w2b 10000000
    peer go-1p w2b 10000000 0 env GOMAXPROCS=1 $GO w2b 10000000
    peer tokio-ct w2b 10000000 0 $RS w2b 10000000
    peer tokio-ct-spawned w2b 10000000 0 env SPAWN=1 $RS w2b 10000000
    peer node w2b 1000000 0 node $JS w2b 1000000               # await setImmediate (loop turn)
    peer node-microtask w2b 10000000 0 node $JS w2bm 10000000  # await null (microtask only)
    if slow; then
        peer asyncio w2b 1000000 0 python3 py/bench.py w2b 1000000
        peer uvloop w2b 1000000 0 /usr/bin/python3 py/bench.py --uvloop w2b 1000000
    fi
}
run_w3() {
    corio w3 1000000
    peer go-1p w3 1000000 0 env GOMAXPROCS=1 $GO w3 1000000
    peer tokio-ct w3 1000000 0 $RS w3 1000000
    peer node w3 1000000 0 node $JS w3 1000000
    if slow; then
        peer asyncio w3 1000000 0 python3 py/bench.py w3 1000000
        peer uvloop w3 1000000 0 /usr/bin/python3 py/bench.py --uvloop w3 1000000
    fi
}
run_mem() {
    corio mem 100000
    RT=corio-huge BW=memhuge corio mem 100000   # the same in 2 MiB pages (src/mem.c's memory)
}
run_w3i() { corio w3i 10000000; }
run_w2c() { corio w2c 10000000; }
run_lock() { corio lock 10000000; }

echo "== $(date -u '+%F %T') UTC, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS"
for w in "${workloads[@]}"; do
    echo "== $w"
    quiet "$w"
    echo "  (machine ${load} % busy before starting)"
    read -r b0 k0 < <(cpu_now); t0=$(date +%s.%N)
    "run_$w"
    others_check "$w" "$b0" "$k0" "$t0"
done

# ---- summary ---------------------------------------------------------------------------------------
# col KEY FIELD: the values of FIELD (6 elapsed_s, 7 rss_kb) over the runs of KEY, numeric only
col() {
    local w rt n d; read -r w rt n d <<<"$1"
    awk -F'\t' -v w="$w" -v rt="$rt" -v n="$n" -v d="$d" -v f="$2" \
        'NR>1 && $1==rt && $2==w && $3==n && $4==d && $f!="NA"{print $f}' "$TSV"
}
median() {  # median of the numbers on stdin, or NA
    sort -g | awk '{v[NR]=$1} END{if(!NR){print "NA"; exit} if(NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN{ if (x=="NA") print "NA"; else printf f, x }'; }

echo
echo "## corio vs peers: medians of $REPS run(s), $(date -u '+%F %T') UTC"
echo
echo "| workload | runtime | N | median ns/op | median wall s | RSS/task (w1) | median peak RSS MiB | ratio corio/peer |"
echo "|---|---|---|---|---|---|---|---|"
declare -A corio_nsop peer_w1
compact_nsop=NA huge_nsop=NA
for k in "${keys[@]}"; do
    read -r w rt n d <<<"$k"
    [ "$n" -gt 0 ] || continue
    el=$(col "$k" 6 | median); rss=$(col "$k" 7 | median)
    nsop=NA; [ "$el" != NA ] && nsop=$(awk -v e="$el" -v n="$n" 'BEGIN{print e*1e9/n}')
    [ "$rt" = corio ] && corio_nsop[$w]=$nsop
    [ "$rt" = corio-compact ] && compact_nsop=$nsop
    [ "$rt" = corio-huge ] && huge_nsop=$nsop
    [ "$w" = w1 ] && peer_w1[$rt]=$nsop
    pertask="-"
    if [ "$w" = w1 ]; then
        base=$(col "w1 $rt 0 $d" 7 | median)
        pertask=$(awk -v p="$rss" -v b="$base" -v n="$n" \
            'BEGIN{ if (p=="NA" || b=="NA") print "NA"; else printf "%.0f B (%.2f KiB)", (p-b)*1024/n, (p-b)/n }')
    fi
    ratio="-"
    c=${corio_nsop[$w]:-NA}
    if [[ $rt != corio* ]] && [ "$c" != NA ] && [ "$nsop" != NA ]; then
        ratio=$(awk -v c="$c" -v p="$nsop" 'BEGIN{printf "%.2f", c/p}')
    fi
    rssmib=$(awk -v r="$rss" 'BEGIN{ if (r=="NA") print "NA"; else printf "%.1f", r/1024 }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w$( [ "$w" = w1 ] && echo " D=${d}s")" "$rt" \
        "$(commas "$n")" "$(fmt "$nsop" %.1f)" "$(fmt "$el" %.3f)" \
        "$pertask" "$rssmib" "$ratio"
done
echo
echo "ratio = corio's median ns/op / the peer's (below 1: corio is faster). w2b: node runs 1M"
if [ "$compact_nsop" != NA ]; then
    line="w1 with compact sleepers (corio-compact), ratio to:"
    for rt in go-1p tokio-ct node libuv; do
        p=${peer_w1[$rt]:-NA}
        [ "$p" != NA ] && line+=" $rt $(awk -v c="$compact_nsop" -v p="$p" 'BEGIN{printf "%.2f", c/p}')"
    done
    echo "$line"
fi
echo "setImmediate yields, node-microtask 10M 'await null'; tokio-ct-spawned yields in a spawned task."
if [[ " ${workloads[*]} " == *" w2 "* ]]; then
    echo "w2: ns/op = ns per round trip (put + get each way); corio's queues have capacity 1, like"
    echo "Tokio's mpsc::channel(1) and asyncio.Queue(1); Go's channels are unbuffered, Node's unbounded."
fi
if [ "${corio_nsop[w2c]:-NA}" != NA ]; then
    echo "w2c: corio moves $(awk -v x="${corio_nsop[w2c]}" 'BEGIN{printf "%.1f", 1e3 / x}') million items/s" \
         "(1,000 producers, 1,000 consumers, one queue of capacity 1,000)."
fi
if [ "${corio_nsop[lock]:-NA}" != NA ]; then
    echo "lock: ns/op = ns per acquisition, every one a FIFO handoff among 10,000 waiting tasks$( \
        [ "${CORIO_BENCH_LOCK:-}" = yield ] && echo " (CORIO_BENCH_LOCK=yield: one yield per hold)")."
fi
if [ "${corio_nsop[mem]:-NA}" != NA ]; then
    echo "mem: fresh memory costs $(awk -v x="${corio_nsop[mem]}" 'BEGIN{printf "%.1f", x / 1e3}') us per 4 KiB page here (the core issue's targets assumed ~1 us)."
    echo "w1 touches about one fresh 4 KiB page per corio sleeper (its stack), one per ~3 Tokio sleepers."
    echo "corio's task slabs and compact sleepers' blocks come from memory on 2 MiB huge pages (src/mem.h),"
    echo "one fault per 2 MiB: $(awk -v x="$huge_nsop" 'BEGIN{ if (x=="NA") print "NA"; else printf "%.2f", x / 1e3}') us per 4 KiB here (corio-huge), about 0.3 us while the host still backs"
    echo "memory a process freed moments before (back-to-back runs) and 5-7 us a few seconds later, once"
    echo "free-page reporting has handed it back. So corio's w1 compact and w3 vary with what ran before"
    echo "(w3 53-65 ns back to back, 154-169 ns after 6 s idle); peers on 4 KiB pages pay 11-15 us per"
    echo "page either way (docs/internals.md)."
fi
[ -z "$PEERS" ] && echo "(no peer figures: corio alone)"
[ ${#contended[@]} -gt 0 ] && echo "CONTENDED (other processes were busy; rerun when idle): ${contended[*]}"
if [ -d /sys/module/page_reporting ] && [[ " ${workloads[*]} " == *" w1 "* ]]; then
    echo "note: w1 times vary from run to run on this VM: a run that touches GiBs of memory"
    echo "(w1 at 1M: corio ~4 GiB of stack pages) pays for each page it touches first."
fi
echo "raw runs: $TSV; corio's JSON lines: $JSONL"
failed=$(awk -F'\t' 'NR>1 && $6=="NA"' "$TSV" | wc -l)
if [ "$failed" -gt 0 ]; then
    echo "WARNING: $failed run(s) failed or printed no time (NA in $TSV)" >&2
    exit 1
fi
