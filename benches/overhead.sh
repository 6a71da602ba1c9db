#!/usr/bin/env bash
# Kernel-path overhead of vigil against no agent and the peer tools a user
# would pick on this kind of host (libbpf-tools, bpftrace), plus vigil's
# lost events at the highest open rate, syscall-to-alert latency and memory.
#
#   sudo benches/overhead.sh [--vigil PATH] [--rounds N] [--quick] [--no-peers]
#
# Loops (benches/loops/*.c, compiled here with gcc into a temp dir):
#   open     openat(O_RDONLY)+close of one file
#   exec     fork + execve(/bin/true) + waitpid
#   connect  TCP connect to a loopback listener + close (RST, no TIME_WAIT)
#   syscall  getppid(2): a syscall no agent watches (the per-syscall tax of
#            hooks on every syscall, paid by the whole system)
# Agents:
#   none            nothing attached
#   vigil-scoped    `vigil run` with rules on proc.name == "nginx" only: the
#                   kernel filter drops every loop event by its comm before the
#                   ring buffer (path scoping: see vigil-default)
#   vigil-userspace `vigil run` with one rule per event type whose condition is
#                   false for the loops but has no filterable term: every loop
#                   event reaches userspace and is evaluated, none fires
#   vigil-scoped-nocompat  as vigil-scoped with `compat_syscalls: false` in a
#                   config file: no raw sys_exit program for 32-bit syscalls
#                   (the price of watching those is the difference)
#   vigil-default   `vigil run` with the shipped rules (RULES_DIR): what a user
#                   pays out of the box (opens path-filtered in the kernel,
#                   execs and connects to userspace)
#   floor           bpftrace with an EMPTY program on sys_exit_openat (kept with
#                   --no-peers: the base of the "vs floor" column): the
#                   least any agent that sees opens (and their result) through
#                   syscall tracepoints can cost here (vigil, too, hooks only
#                   the exit)
#   opensnoop / execsnoop / tcplife   libbpf-tools, output to a file
#                   (tcpconnect needs kprobes, which this kernel lacks)
#   bpftrace        counting openat/exec/connect per comm in maps
# Every round starts each agent once (rotating the order), waits until it is
# attached, runs each loop REPS times keeping the fastest (other load on a
# shared machine only ever adds time), stops it. Results are medians over
# rounds; the ratio is the median of per-round ratios to the same round's
# no-agent run. "agent CPU ns/op" is the agent's own user+system CPU time
# (all threads, 10 ms tick resolution) divided by the loop's operations: work
# done outside the traced syscall (ring-buffer reading, rule evaluation, output).
#
# Environment: VIGIL (binary, default target/release/vigil), ROUNDS (7), REPS (3),
# OPEN_N (100000), EXEC_N (300), CONN_N (3000), NULL_N (1000000), LAT_N (2000), LAT_GAP_US (1000),
# RULES_DIR (default rules, default rules/), NICE (-20: loops and agents run at this
# nice level so the other load on a shared machine disturbs them less; 0 = off).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIGIL=${VIGIL:-$ROOT/target/release/vigil}
ROUNDS=${ROUNDS:-7}
REPS=${REPS:-3}
OPEN_N=${OPEN_N:-100000}
EXEC_N=${EXEC_N:-300}
CONN_N=${CONN_N:-3000}
NULL_N=${NULL_N:-1000000}
NICE=${NICE:--20}
LAT_N=${LAT_N:-2000}
LAT_GAP_US=${LAT_GAP_US:-1000}
RULES_DIR=${RULES_DIR:-$ROOT/rules}
PEERS=1
while (($#)); do
  case $1 in
    --vigil) VIGIL=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --quick) ROUNDS=3; REPS=2; OPEN_N=30000; EXEC_N=100; CONN_N=1000; NULL_N=300000; LAT_N=500; shift ;;
    --no-peers) PEERS=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "overhead.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  echo "overhead.sh: needs root (eBPF agents)" >&2
  exit 1
fi

"$ROOT/benches/install-peers.sh" || echo "note: could not install peer tools; missing peers are skipped" >&2

TMP=$(mktemp -d /tmp/vigil-bench.XXXXXX)
AGENT_PID=""
AGENT_AUX=()
# BPF run-time statistics add two clock reads to every BPF program run (of every
# agent): off for the measurements, on only around the per-program section
# below, and whatever the machine had is restored at exit (also on ^C).
STATS_WAS=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
set_bpf_stats() { [[ -w /proc/sys/kernel/bpf_stats_enabled ]] && echo "$1" > /proc/sys/kernel/bpf_stats_enabled || true; }
cleanup() {
  stop_agent || true
  set_bpf_stats "$STATS_WAS"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
[[ $STATS_WAS == 0 ]] || log "kernel.bpf_stats_enabled was $STATS_WAS: off while measuring, restored at exit"
set_bpf_stats 0

# --- build the loops ---------------------------------------------------------
for src in "$ROOT"/benches/loops/*.c; do
  gcc -O2 -Wall -o "$TMP/$(basename "$src" .c)" "$src"
done
BIN=$TMP
# The loops' files live apart from the rule directories: vigil's rule watcher
# also watches each rule directory's parent (to see directory swaps); it asks
# inotify for changes only, but the loops should not depend on that.
mkdir -p "$TMP/data"
echo "vigil overhead target" > "$TMP/data/target-file"
OPEN_FILE=$TMP/data/target-file

# --- rule sets -----------------------------------------------------------------
mkdir -p "$TMP/rules/scoped" "$TMP/rules/userspace" "$TMP/rules/latency"
cat > "$TMP/rules/scoped/scoped.yaml" <<'EOF'
# Every rule is scoped to nginx: the kernel filter drops the loops' events.
- rule: bench scoped exec
  desc: benchmark rule the kernel filter scopes away from the loops
  events: [exec]
  condition: proc.name == "nginx" && proc.cmdline.contains("vigil-bench-never")
  output: "scoped exec {proc.name}"
  priority: debug
- rule: bench scoped open
  desc: benchmark rule the kernel filter scopes away from the loops
  events: [open]
  condition: proc.name == "nginx" && file.path.contains("vigil-bench-never")
  output: "scoped open {file.path}"
  priority: debug
- rule: bench scoped connect
  desc: benchmark rule the kernel filter scopes away from the loops
  events: [connect]
  condition: proc.name == "nginx" && net.dport == 1
  output: "scoped connect {net.dport}"
  priority: debug
EOF
printf 'compat_syscalls: false\noutputs:\n  stdout: { format: json }\n' > "$TMP/nocompat.yaml"
cat > "$TMP/rules/userspace/userspace.yaml" <<'EOF'
# No rule has a term the kernel filter can use: every loop event reaches
# userspace and is evaluated; the conditions are false for all of them.
- rule: bench userspace exec
  desc: benchmark rule every exec reaches in userspace
  events: [exec]
  condition: proc.cmdline.contains("vigil-bench-never-matches")
  output: "userspace exec {proc.name}"
  priority: debug
- rule: bench userspace open
  desc: benchmark rule every open reaches in userspace
  events: [open]
  condition: file.path.contains("/vigil-bench-never-matches/")
  output: "userspace open {file.path}"
  priority: debug
- rule: bench userspace connect
  desc: benchmark rule every connect reaches in userspace
  events: [connect]
  condition: net.daddr == "192.0.2.77" && net.dport == 1
  output: "userspace connect {net.daddr}"
  priority: debug
EOF
LAT_DIR=$TMP/data/lat
mkdir -p "$LAT_DIR"
( cd "$LAT_DIR" && for ((i = 0; i < LAT_N; i++)); do : > "lat-$i"; done )
cat > "$TMP/rules/latency/99-bench-latency.yaml" <<EOF
- rule: bench latency probe
  desc: fires on every open of the latency loop's files
  events: [open]
  condition: proc.name == "lat_loop" && file.path.starts_with("$LAT_DIR/")
  output: "latency probe {file.path}"
  priority: notice
EOF
# What the kernel filter makes of each rule set (`vigil explain`), so the
# output shows that "scoped" really is dropped in the kernel and "userspace"
# really passes everything.
explain_rules() {
  [[ -x $VIGIL ]] || return 0
  local d
  for d in scoped userspace; do
    echo "kernel filter for the $d rules (vigil explain):"
    "$VIGIL" explain --rules "$TMP/rules/$d" 2>&1 | sed '/^rules:/,$d' | sed 's/^/    /'
  done
  echo
}
HAVE_DEFAULT_RULES=0
if compgen -G "$RULES_DIR/*.yaml" >/dev/null; then
  HAVE_DEFAULT_RULES=1
  cp "$RULES_DIR"/*.yaml "$TMP/rules/latency/"
fi

# --- agents --------------------------------------------------------------------
HAVE_VIGIL=0
if [[ -x $VIGIL ]] && "$VIGIL" run --help >/dev/null 2>&1; then
  HAVE_VIGIL=1
else
  echo "note: no vigil binary at $VIGIL (build with: cargo build --release); vigil agents skipped" >&2
fi
METRICS_PORT=$((20000 + RANDOM % 20000))

metrics() { # Prometheus text from vigil's --metrics endpoint (bash /dev/tcp, no curl needed)
  local out
  exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" || return 1
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  out=$(cat <&3) || true
  exec 3<&-
  printf '%s\n' "$out" | tr -d '\r' | sed '1,/^$/d'
}

# start_vigil RULES_DIR OUT [extra args]: starts vigil, waits for READY=1 on
# NOTIFY_SOCKET (falls back to the metrics endpoint answering + 2 s).
start_vigil() {
  local rules=$1 out=$2
  shift 2
  local sock=$TMP/notify.sock
  rm -f "$sock"
  "$BIN/notify_wait" "$sock" 60 &
  local waiter=$!
  while [[ ! -S $sock ]] && kill -0 "$waiter" 2>/dev/null; do sleep 0.02; done
  NOTIFY_SOCKET=$sock VIGIL_LOG=${VIGIL_LOG:-warn} nice -n "$NICE" "$VIGIL" run --rules "$rules" --json \
    --metrics "127.0.0.1:$METRICS_PORT" "$@" > "$out" 2> "$TMP/vigil.err" &
  AGENT_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$AGENT_PID" 2>/dev/null; then
      kill "$waiter" 2>/dev/null || true
      wait "$waiter" 2>/dev/null || true
      echo "vigil exited during start-up:" >&2
      tail -5 "$TMP/vigil.err" >&2
      AGENT_PID=""
      return 1
    fi
    if ! kill -0 "$waiter" 2>/dev/null; then
      if wait "$waiter"; then return 0; fi
      break
    fi
    sleep 0.05
  done
  kill "$waiter" 2>/dev/null || true
  wait "$waiter" 2>/dev/null || true
  log "no READY=1 from vigil; waiting for its metrics endpoint instead"
  for ((i = 0; i < 100; i++)); do
    if metrics >/dev/null 2>&1; then sleep 2; return 0; fi
    sleep 0.1
  done
  sleep 2
}

# start_peer NAME OUT CMD...: runs a tracepoint-based peer in a private mount
# namespace with tracefs mounted there (the host's mounts stay untouched),
# then waits for its first output line (header) plus a short settle time.
start_peer() {
  local out=$2
  shift 2
  nice -n "$NICE" unshare --mount --propagation private /bin/sh -c \
    'mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; exec stdbuf -oL "$@"' \
    sh "$@" > "$out" 2>&1 &
  AGENT_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "$1 exited during start-up: $(tail -2 "$out")" >&2; AGENT_PID=""; return 1; }
    if grep -qE 'PID|Attaching' "$out" 2>/dev/null; then sleep 0.5; return 0; fi
    sleep 0.05
  done
  echo "$1 printed no header in 15 s" >&2
  return 1
}

stop_agent() {
  if [[ -n $AGENT_PID ]]; then
    kill -INT "$AGENT_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$AGENT_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
}

BT_PROG='tracepoint:syscalls:sys_enter_openat { @opens[comm] = count(); }
tracepoint:sched:sched_process_exec { @execs[comm] = count(); }
tracepoint:syscalls:sys_enter_connect { @connects[comm] = count(); }'

FLOOR_PROG='tracepoint:syscalls:sys_exit_openat { }'

AGENTS=(none)
((HAVE_VIGIL)) && AGENTS+=(vigil-scoped vigil-scoped-nocompat vigil-userspace vigil-default)
if ((PEERS)); then
  for p in opensnoop execsnoop tcplife bpftrace; do
    if command -v "$p" >/dev/null 2>&1; then AGENTS+=("$p"); else echo "note: $p not installed; skipped" >&2; fi
  done
fi
# The floor is the yardstick of the "vs floor" column: kept with --no-peers.
if command -v bpftrace >/dev/null 2>&1; then AGENTS+=(floor); else echo "note: bpftrace not installed; no floor agent, no vs-floor column" >&2; fi

start_agent() { # start_agent NAME
  local out=$TMP/agent.out
  case $1 in
    none) AGENT_PID="" ;;
    vigil-scoped) start_vigil "$TMP/rules/scoped" "$out" ;;
    vigil-userspace) start_vigil "$TMP/rules/userspace" "$out" ;;
    vigil-scoped-nocompat) start_vigil "$TMP/rules/scoped" "$out" --config "$TMP/nocompat.yaml" ;;
    vigil-default) start_vigil "$RULES_DIR" "$out" ;;
    floor) start_peer bpftrace "$out" bpftrace -e "$FLOOR_PROG" ;;
    opensnoop) start_peer opensnoop "$out" opensnoop ;;
    execsnoop) start_peer execsnoop "$out" execsnoop ;;
    tcplife) start_peer tcplife "$out" tcplife ;;
    bpftrace) start_peer bpftrace "$out" bpftrace -e "$BT_PROG" ;;
  esac
}

agent_cpu_ticks() { # utime+stime of the agent (all threads), clock ticks
  [[ -n $AGENT_PID && -r /proc/$AGENT_PID/stat ]] || { echo 0; return; }
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$AGENT_PID/stat"
}

run_loop() { # run_loop NAME -> ns per op on stdout
  case $1 in
    open) nice -n "$NICE" "$BIN/open_loop" "$OPEN_N" "$OPEN_FILE" ;;
    exec) nice -n "$NICE" "$BIN/exec_loop" "$EXEC_N" ;;
    connect) nice -n "$NICE" "$BIN/connect_loop" "$CONN_N" ;;
    syscall) nice -n "$NICE" "$BIN/null_loop" "$NULL_N" ;;
  esac
}
loop_n() { case $1 in open) echo "$OPEN_N" ;; exec) echo "$EXEC_N" ;; connect) echo "$CONN_N" ;; syscall) echo "$NULL_N" ;; esac; }

LOOPS=(open exec connect syscall)
RES=$TMP/results.tsv # round agent loop ns_per_op agent_cpu_ns_per_op
: > "$RES"
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))

# Other eBPF tracing programs loaded by someone else (another agent, a test
# left running) add their cost to every measurement, the no-agent baseline
# included. Checked before the loops and again after them.
foreign_bpf() { # foreign_bpf WHEN
  command -v bpftool >/dev/null 2>&1 || return 0
  local f
  f=$(bpftool prog show 2>/dev/null | awk '$2 ~ /^(tracing|tracepoint|raw_tracepoint|kprobe|perf_event)$/ { print $2 "/" $4 }' |
    sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }')
  [[ -z $f ]] || printf 'WARNING: tracing BPF programs of other processes loaded %s (they tax every agent, the baseline too): %s\n\n' "$1" "$f"
}
foreign_bpf "before the loops"
explain_rules
log "machine: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
log "nice level of loops and agents: $NICE"
log "agents: ${AGENTS[*]}; rounds: $ROUNDS x $REPS reps; open N=$OPEN_N exec N=$EXEC_N connect N=$CONN_N syscall N=$NULL_N"
NA=${#AGENTS[@]}
declare -A FAILS=()
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < NA; k++)); do
    a=${AGENTS[$(((k + r - 1) % NA))]}
    if ((${FAILS[$a]:-0} >= 2)); then continue; fi
    if ! start_agent "$a"; then
      stop_agent
      FAILS[$a]=$((${FAILS[$a]:-0} + 1))
      log "round $r: $a failed to start; skipped this round$( ((FAILS[$a] >= 2)) && echo " and from now on")"
      continue
    fi
    for l in "${LOOPS[@]}"; do
      c0=$(agent_cpu_ticks)
      best=""
      for ((rep = 0; rep < REPS; rep++)); do
        ns=$(run_loop "$l") || { log "round $r: $l loop failed under $a"; continue; }
        best=$(awk -v a="$best" -v b="$ns" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')
      done
      [[ -n $best ]] || continue
      c1=$(agent_cpu_ticks)
      cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TICK_NS" -v n="$(loop_n "$l")" -v k="$REPS" 'BEGIN { printf "%.1f", (b - a) * t / (n * k) }')
      printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$a" "$l" "$best" "$cpu" >> "$RES"
    done
    if [[ $a == vigil-default ]]; then
      # the loops are binaries in /tmp: "Execution from temporary directory" fires
      log "round $r: $a raised $(wc -l < "$TMP/agent.out") alerts: $(grep -o '"rule":"[^"]*"' "$TMP/agent.out" | sort | uniq -c | tr -s ' ' | paste -sd, -)"
    elif [[ $a == vigil-* ]]; then
      alerts=$(wc -l < "$TMP/agent.out")
      ((alerts == 0)) || log "round $r: $a raised $alerts alerts (expected none)"
    fi
    stop_agent
    log "round $r: $a done"
  done
done

# --- summary -------------------------------------------------------------------
echo
foreign_bpf "after the loops"
echo "## Loop overhead: median over $ROUNDS rounds of the best of $REPS runs, ns/op (ratio = median of per-round ratios to no agent; vs floor = median of per-round ratios to the floor agent, one empty program on sys_exit_openat)"
echo
printf '| loop | agent | median ns/op | ratio | ratio min-max | vs floor | vs floor min-max | agent CPU ns/op |\n'
printf '|---|---|---:|---:|---|---:|---|---:|\n'
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for l in "${LOOPS[@]}"; do
  for a in "${AGENTS[@]}"; do
    med=$(awk -F'\t' -v a="$a" -v l="$l" '$2 == a && $3 == l { print $4 }' "$RES" | median)
    cpu=$(awk -F'\t' -v a="$a" -v l="$l" '$2 == a && $3 == l { print $5 }' "$RES" | median)
    ratios_to() { # ratios_to BASE_AGENT: this agent's per-round ratios to BASE_AGENT's run
      awk -F'\t' -v a="$a" -v l="$l" -v b="$1" '
        $3 == l && $2 == b { base[$1] = $4 }
        $3 == l && $2 == a { val[$1] = $4 }
        END { for (r in val) if (r in base && base[r] > 0) printf "%.3f\n", val[r] / base[r] }' "$RES"
    }
    ratios=$(ratios_to none)
    rmed=$(printf '%s\n' "$ratios" | grep . | median || echo nan)
    rmin=$(printf '%s\n' "$ratios" | grep . | sort -g | head -1 || true)
    rmax=$(printf '%s\n' "$ratios" | grep . | sort -g | tail -1 || true)
    fratios=$(ratios_to floor)
    fmed=$(printf '%s\n' "$fratios" | grep . | median || echo nan)
    fmin=$(printf '%s\n' "$fratios" | grep . | sort -g | head -1 || true)
    fmax=$(printf '%s\n' "$fratios" | grep . | sort -g | tail -1 || true)
    [[ $med == nan ]] && continue
    awk -v l="$l" -v a="$a" -v m="$med" -v r="$rmed" -v lo="$rmin" -v hi="$rmax" -v c="$cpu" \
      -v f="$fmed" -v flo="$fmin" -v fhi="$fmax" \
      'BEGIN { printf "| %s | %s | %.0f | %s | %s-%s | %s | %s-%s | %s |\n", l, a, m, (r == "nan" ? "n/a" : sprintf("%.2fx", r)), lo, hi, (f == "nan" ? "n/a" : sprintf("%.3fx", f)), flo, fhi, c }'
  done
done
echo
echo "raw rounds (round, agent, loop, ns/op, agent CPU ns/op):"
sort -k3,3 -k2,2 -k1,1n "$RES" | sed 's/^/    /'

((HAVE_VIGIL)) || exit 0

# --- events lost at the highest open rate ----------------------------------------
echo
echo "## vigil: events lost at the highest open rate (userspace rules, 2 parallel open loops x $((OPEN_N * 5)) opens)"
echo
if start_vigil "$TMP/rules/userspace" "$TMP/agent.out"; then
  metrics > "$TMP/m0" 2>/dev/null || : > "$TMP/m0"
  nice -n "$NICE" "$BIN/open_loop" $((OPEN_N * 5)) "$OPEN_FILE" > "$TMP/lost-a" &
  pa=$!
  nice -n "$NICE" "$BIN/open_loop" $((OPEN_N * 5)) "$OPEN_FILE" > "$TMP/lost-b"
  wait "$pa"
  sleep 1
  metrics > "$TMP/m1" 2>/dev/null || : > "$TMP/m1"
  echo "open loop rates: $(awk '{ printf "%.0f opens/s ", 1e9 / $1 }' "$TMP/lost-a" "$TMP/lost-b")"
  if [[ -s $TMP/m1 ]]; then
    echo
    echo '| counter | before | after | delta |'
    echo '|---|---:|---:|---:|'
    awk 'NR == FNR { if ($0 !~ /^#/ && NF >= 2) b[$1] = $NF; next }
         $0 !~ /^#/ && NF >= 2 && $1 ~ /lost|drop|seen|passed|events/ {
           printf "| `%s` | %s | %s | %.0f |\n", $1, ($1 in b ? b[$1] : 0), $NF, $NF - ($1 in b ? b[$1] : 0) }' \
      "$TMP/m0" "$TMP/m1"
    lost=$(awk 'NR == FNR { if ($0 !~ /^#/ && NF >= 2) b[$1] = $NF; next }
         $0 !~ /^#/ && NF >= 2 && $1 ~ /lost|drop/ { d += $NF - ($1 in b ? b[$1] : 0) } END { printf "%.0f", d }' "$TMP/m0" "$TMP/m1")
    echo
    echo "events lost or dropped during the run (sum of lost/drop counter deltas): $lost"
  else
    echo "metrics endpoint did not answer; lost events not measured"
  fi
  alerts=$(wc -l < "$TMP/agent.out")
  echo "alerts raised (expected 0): $alerts"
  stop_agent
else
  echo "vigil did not start; not measured"
fi

# --- kernel-side cost per BPF program ---------------------------------------------
# kernel.bpf_stats_enabled makes the kernel time every BPF program run
# (run_time_ns / run_cnt in `bpftool prog show`). It adds two clock reads per
# run, so these are upper bounds; it is switched on only around one open loop
# per vigil configuration and restored afterwards.
prog_snapshot() { # id name run_time_ns run_cnt, one program a line
  bpftool prog show 2>/dev/null | awk '/^[0-9]+:/ {
    id = $1; sub(":", "", id); name = ""; rt = 0; rc = 0
    for (i = 2; i <= NF; i++) { if ($i == "name") name = $(i + 1); if ($i == "run_time_ns") rt = $(i + 1); if ($i == "run_cnt") rc = $(i + 1) }
    print id, name, rt, rc }'
}
if command -v bpftool >/dev/null 2>&1 && [[ -w /proc/sys/kernel/bpf_stats_enabled ]]; then
  echo
  echo "## vigil: kernel-side cost per BPF program during one open loop of $OPEN_N open+close (kernel.bpf_stats_enabled)"
  for cfg in scoped userspace; do
    prog_snapshot | awk '{ print $1 }' > "$TMP/ids-before"
    if ! start_vigil "$TMP/rules/$cfg" "$TMP/agent.out"; then
      echo "vigil-$cfg did not start; not measured"
      continue
    fi
    set_bpf_stats 1
    prog_snapshot > "$TMP/ps0"
    nice -n "$NICE" "$BIN/open_loop" "$OPEN_N" "$OPEN_FILE" > "$TMP/ps-loop"
    prog_snapshot > "$TMP/ps1"
    set_bpf_stats 0
    stop_agent
    echo
    echo "vigil-$cfg (loop: $(cat "$TMP/ps-loop") ns/op with stats on):"
    echo
    echo "| program | runs | avg ns/run | ns per open+close |"
    echo "|---|---:|---:|---:|"
    awk -v n="$OPEN_N" 'FILENAME == ARGV[1] { skip[$1] = 1; next }
         FILENAME == ARGV[2] { rt[$1] = $3; rc[$1] = $4; next }
         !($1 in skip) && ($4 - rc[$1]) > 0 {
           d = $4 - rc[$1]; t = $3 - rt[$1]; tot += t
           printf "| %s | %d | %.0f | %.0f |\n", $2, d, t / d, t / n }
         END { printf "| **all vigil programs** | | | **%.0f** |\n", tot / n }' \
      "$TMP/ids-before" "$TMP/ps0" "$TMP/ps1"
  done
fi

# --- syscall-to-alert latency ----------------------------------------------------
echo
if ((HAVE_DEFAULT_RULES)); then
  echo "## vigil: syscall-to-alert latency (default rules + one probe rule; $LAT_N opens, ${LAT_GAP_US} us apart)"
else
  echo "## vigil: syscall-to-alert latency (one probe rule, no default rules found in $RULES_DIR; $LAT_N opens, ${LAT_GAP_US} us apart)"
fi
echo
# vigil's stdout goes through `stamp`, which notes when each alert line arrived.
start_lat() {
  local sock=$TMP/notify.sock
  rm -f "$sock"
  "$BIN/notify_wait" "$sock" 60 &
  local waiter=$!
  while [[ ! -S $sock ]] && kill -0 "$waiter" 2>/dev/null; do sleep 0.02; done
  NOTIFY_SOCKET=$sock VIGIL_LOG=${VIGIL_LOG:-warn} nice -n "$NICE" "$VIGIL" run --rules "$1" --json \
    --metrics "127.0.0.1:$METRICS_PORT" > >(nice -n "$NICE" "$BIN/stamp" > "$TMP/alerts.stamped") 2> "$TMP/vigil.err" &
  AGENT_PID=$!
  if ! wait "$waiter"; then
    kill -0 "$AGENT_PID" 2>/dev/null || { tail -5 "$TMP/vigil.err" >&2; AGENT_PID=""; return 1; }
    log "no READY=1 from vigil; settling 3 s"
    sleep 3
  fi
}
LAT_RULES=$TMP/rules/latency
if ! start_lat "$LAT_RULES"; then
  log "vigil failed to start with the default rules + probe; retrying with the probe rule only"
  mkdir -p "$TMP/rules/probe"
  cp "$TMP/rules/latency/99-bench-latency.yaml" "$TMP/rules/probe/"
  LAT_RULES=$TMP/rules/probe
  start_lat "$LAT_RULES" || true
fi
if [[ -n $AGENT_PID ]]; then
  (cd "$TMP" && nice -n "$NICE" "$BIN/lat_loop" "$LAT_N" "$LAT_DIR" "$LAT_GAP_US" > "$TMP/lat.sent")
  sleep 1
  # RSS with the default rules after this load (plus one open/exec/connect burst)
  "$BIN/open_loop" "$OPEN_N" "$OPEN_FILE" >/dev/null
  "$BIN/exec_loop" "$EXEC_N" >/dev/null
  "$BIN/connect_loop" "$CONN_N" >/dev/null
  sleep 1
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$AGENT_PID/status")
  stop_agent
  sleep 0.5
  awk 'NR == FNR { sent[$1] = $2; next }
       { if (match($0, /\/lat-[0-9]+"/)) { i = substr($0, RSTART + 5, RLENGTH - 6); if ((i in sent) && !(i in seen)) { seen[i] = 1; print ($1 - sent[i]) / 1e6 } } }' \
    "$TMP/lat.sent" "$TMP/alerts.stamped" | sort -g > "$TMP/lat.ms"
  got=$(wc -l < "$TMP/lat.ms")
  pct() { awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.3f", v[i] }' "$TMP/lat.ms"; }
  echo "| alerts matched | p50 ms | p90 ms | p99 ms | max ms |"
  echo "|---:|---:|---:|---:|---:|"
  echo "| $got / $LAT_N | $(pct 50) | $(pct 90) | $(pct 99) | $(pct 100) |"
  echo
  echo "## vigil: memory with $( ((HAVE_DEFAULT_RULES)) && echo "the default rules" || echo "the probe rule only") after the latency run and one loop burst"
  echo
  echo "VmRSS ${rss} kB ($((rss / 1024)) MB), VmHWM ${hwm} kB ($((hwm / 1024)) MB)"
else
  echo "vigil did not start; latency and memory not measured"
fi
