#!/usr/bin/env bash
# pm - the local runner: install what is missing, build, start/stop the six
# daemons, run the sample move-in, run the tests.
#
#   ./pm up        install + build + start + sample move-in
#   ./pm test      install + build (normal and sanitizer) + every test via ctest
#   ./pm start     build if needed, start the daemons that are not running
#   ./pm down      stop them cleanly (SIGTERM, then wait)
#   ./pm status    which daemons answer
#   ./pm ctl ARGS  pmctl with the embedded default config
#   ./pm build     install + build only
#
# PM_HOME=DIR puts var/ (sockets, data, logs) under DIR instead of ./var.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${PM_BUILD_DIR:-$ROOT/build}
BUILD_ASAN=${PM_BUILD_ASAN_DIR:-$ROOT/build-asan}
BUILD_FUZZ=${PM_BUILD_FUZZ_DIR:-$ROOT/build-fuzz}
export PM_HOME=${PM_HOME:-$ROOT/var}
mkdir -p "$PM_HOME"
PM_HOME=$(cd "$PM_HOME" && pwd)
DAEMONS=(intake inspection workorder billing notify gateway)

# Build and runtime packages (Debian 12), then what the tests need (the
# board's browser test: chromium, its driver, selenium and a CJK font).
PACKAGES=(cmake make gcc pkg-config
          libzmq3-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev libev-dev
          libinih-dev libcsv-dev libcjson-dev libsodium-dev libmicrohttpd-dev libcmocka-dev
          libcurl4-openssl-dev libsystemd-dev)
# The sample move-in (./pm up) is driven by tests/support/movein.py: Python, ZeroMQ, protobuf.
SAMPLE_PACKAGES=(python3 python3-zmq python3-protobuf protobuf-compiler)
TEST_PACKAGES=(python3 python3-zmq python3-protobuf protobuf-compiler systemd clang libclang-rt-14-dev lmdb-utils
               chromium chromium-driver python3-selenium fonts-wqy-microhei openssl python3-aiosmtpd)
PY=/usr/bin/python3
SAMPLE=("$ROOT/deploy/sample/units.csv" "$ROOT/deploy/sample/units-E02.gbk.csv")

say() { printf '%s\n' "$*"; }
die() { printf 'pm: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "pm: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && { command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"; sudo=sudo; }
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() { # build DIR [cmake args...]; PM_TARGET=name builds that target only
    local dir=$1; shift
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    fi
    local rc=0
    cmake --build "$dir" -j "$(nproc)" ${PM_TARGET:+--target "$PM_TARGET"} -- --no-print-directory \
        >"$dir/build.log" 2>&1 || rc=$?
    grep -vE '^\[ *[0-9]+%\]|^Consolidate|^Built target|^-- |^gmake|^make' "$dir/build.log" || true
    [ $rc -eq 0 ] || die "build failed in $dir (full log: $dir/build.log)"
}

pmctl() { "$BUILD/tools/pmctl/pmctl" "$@"; }

pidfile() { printf '%s/run/%s.pid' "$PM_HOME" "$1"; }

alive() { # alive PID -> 0 if it runs (an exited one not yet reaped by init counts as gone)
    kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

running() { # running NAME -> 0 if its pid is alive
    local f; f=$(pidfile "$1")
    [ -f "$f" ] && alive "$(cat "$f")"
}

# The local runner's daemons run on a clock the sample can move (pmctl clock;
# weeks of a move-in pass in a minute) and send to the file gateway without a
# rate limit (there is no provider to protect). A real deployment does neither
# (deploy/systemd), nor do the tests (./pm test). Set these in the
# environment to run otherwise.
local_runner_env() {
    export PM_GENERAL_MANUAL_CLOCK=${PM_GENERAL_MANUAL_CLOCK:-true}
    export PM_NOTIFY_SMS_RATE=${PM_NOTIFY_SMS_RATE:-0} PM_NOTIFY_EMAIL_RATE=${PM_NOTIFY_EMAIL_RATE:-0}
}

start() {
    local_runner_env
    command -v cmake >/dev/null || die "cmake is missing: run ./pm up once (it installs what is needed)"
    build "$BUILD" # incremental: a no-op when nothing changed
    mkdir -p "$PM_HOME/run" "$PM_HOME/log"
    local d started=()
    for d in "${DAEMONS[@]}"; do
        if running "$d"; then continue; fi
        nohup "$BUILD/services/$d/pm-$d" >>"$PM_HOME/log/$d.log" 2>&1 </dev/null &
        echo $! >"$(pidfile "$d")"
        started+=("$d")
    done
    if ! pmctl ping --wait 15 >/dev/null; then
        pmctl ping || true
        die "some daemons did not come up; see $PM_HOME/log/*.log"
    fi
    if [ ${#started[@]} -gt 0 ]; then say "started: ${started[*]} (logs in $PM_HOME/log/)"; else say "all daemons were already running"; fi
}

down() {
    local d pid stopped=()
    for d in "${DAEMONS[@]}"; do
        running "$d" || { rm -f "$(pidfile "$d")"; continue; }
        pid=$(cat "$(pidfile "$d")")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
        if alive "$pid"; then
            say "pm: $d (pid $pid) did not stop in 10 s; sending SIGKILL (state is safe: every commit is durable)"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$(pidfile "$d")"
        stopped+=("$d")
    done
    if [ ${#stopped[@]} -gt 0 ]; then say "stopped: ${stopped[*]}"; else say "nothing was running"; fi
}

# The sample move-in: a generated batch of three estates (deploy/sample/, made
# by deploy/sample/gen.py) driven from import to keys by tests/support/movein.py
# on the manual clock. Run once per PM_HOME: a second ./pm up says what it
# found and shows where things stand.
sample() {
    local done=$PM_HOME/sample-movein.json units
    say ""
    if [ -f "$done" ]; then
        say "== the sample move-in ran here before ($(date -r "$done" '+%F %T')): not run again"
        say "   (to run it afresh: ./pm down && rm -rf $PM_HOME && ./pm up)"
    else
        units=$(pmctl --json call intake intake.progress '{}' | "$PY" -c \
            'import json,sys; print(sum(int(e.get("units",0)) for e in json.load(sys.stdin)["intake_progress"].get("estates",[])))')
        if [ "$units" != 0 ]; then
            say "== intake holds $units units already, not from a finished sample run: the sample is not run over them"
            say "   (an interrupted ./pm up? to run it afresh: ./pm down && rm -rf $PM_HOME && ./pm up)"
        else
            say "== the sample move-in: ${#SAMPLE[@]} sales lists of deploy/sample/, from import to keys on the manual clock"
            "$PY" "$ROOT/tests/support/movein.py" --pmctl "$BUILD/tools/pmctl/pmctl" --json "$done" "${SAMPLE[@]}" \
                || die "the sample move-in failed (daemons' logs: $PM_HOME/log/)"
        fi
    fi
    say ""
    say "== pmctl top --once"
    pmctl top --once || true
    if [ -f "$done" ]; then
        say ""
        say "== KPIs (the daemons' own figures)"
        "$PY" "$ROOT/tests/support/movein.py" --pmctl "$BUILD/tools/pmctl/pmctl" --report --json "$done" || true
    fi
    local outbox=${PM_NOTIFY_FILE_DIR:-$PM_HOME/notify/outbox} ch
    say ""
    say "== what notify sent (the file gateway: one JSON line a message, as a provider would get it)"
    for ch in sms email; do
        [ -f "$outbox/$ch.jsonl" ] && say "   $outbox/$ch.jsonl: $(wc -l <"$outbox/$ch.jsonl") messages"
    done
    [ -f "$outbox/sms.jsonl" ] && say "   e.g. $("$PY" -c 'import json,sys; m=json.loads(open(sys.argv[1]).readline()); print(m["template"]+" to "+m["name"]+": "+m["text"])' "$outbox/sms.jsonl")"
    board
}

# The operations board: a token for it the first time (shown once, in the link).
board() {
    local out link
    say ""
    if out=$(pmctl token create board --role integration 2>/dev/null); then
        link=$(printf '%s\n' "$out" | sed -n 's/^the board: *//p')
        say "== the operations board: $link"
        say "   (the link carries a new read-only token 'board', shown only this once)"
    else
        link=$(pmctl call gateway gateway.status 2>/dev/null | sed -n 's/^OK: gateway //p')
        say "== the operations board: ${link:-see [gateway] listen}"
        say "   (it asks for a token: ./pm ctl token create NAME --role integration)"
    fi
}

usage() {
    cat <<EOF

The move-in backend is running (PM_HOME=$PM_HOME), on a manual clock.
  ./pm ctl endpoints                          where each daemon listens
  ./pm ctl unit E01/1/1-102                   one unit's whole case, each daemon's part
  ./pm ctl call intake intake.unit.get '{"unit_id":"E01/1/1-102"}'
  ./pm ctl top                                live board: estates' progress, daemons' queues and lag
  ./pm ctl queues billing                     work waiting on people (dunning calls, bank lines, ...)
  ./pm ctl events intake intake.unit. | head  events as JSON lines (--follow to keep going)
  ./pm ctl metrics billing                    counters, gauges, latencies (--prom for Prometheus)
  ./pm ctl clock advance 1d                   move the daemons' clock (timers fire: dunning, SLAs)
  ./pm ctl import FILE.csv                    import units and owners (UTF-8 or GBK; --dry-run first)
  ./pm ctl token create NAME --role ROLE      an API token (HTTP API, events, board; shown once)
  ./pm status | ./pm down                     see or stop the daemons
EOF
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    up)
        deps "${PACKAGES[@]}" "${SAMPLE_PACKAGES[@]}"
        build "$BUILD"
        start
        sample
        usage ;;
    start) start ;;
    down|stop) down ;;
    status)
        [ -x "$BUILD/tools/pmctl/pmctl" ] || die "not built yet: ./pm up"
        pmctl ping "$@" ;;
    build)
        deps "${PACKAGES[@]}"
        build "$BUILD" ;;
    ctl)
        [ -x "$BUILD/tools/pmctl/pmctl" ] || die "not built yet: ./pm up"
        exec "$BUILD/tools/pmctl/pmctl" "$@" ;;
    test)
        deps "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
        build "$BUILD"
        say "== tests (RelWithDebInfo)"
        (cd "$BUILD" && ctest --output-on-failure -j 2 "$@")
        build "$BUILD_ASAN" -DPM_SANITIZE=ON
        say "== tests (-fsanitize=address,undefined)"
        (cd "$BUILD_ASAN" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            ctest --output-on-failure -j 2 "$@")
        PM_TARGET=fuzz_all build "$BUILD_FUZZ" -DCMAKE_C_COMPILER=clang -DPM_FUZZ=ON
        say "== fuzzing (clang + libFuzzer): the kept crash inputs, then a short run of each target"
        (cd "$BUILD_FUZZ" && ctest --output-on-failure -j 2 -L fuzz) ;;
    help|-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (try ./pm help)" ;;
esac
