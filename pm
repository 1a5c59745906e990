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
TEST_PACKAGES=(python3 python3-zmq python3-protobuf protobuf-compiler systemd clang libclang-rt-14-dev lmdb-utils
               chromium chromium-driver python3-selenium fonts-wqy-microhei openssl python3-aiosmtpd)

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

start() {
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

sample() {
    local csv=$ROOT/deploy/sample/units.csv rc=0
    say ""
    say "== sample move-in: importing $csv"
    pmctl import "$csv" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || die "sample import failed"
    [ $rc -eq 3 ] && say "   (the sample holds two bad rows on purpose: this is what an operator sees)"
    # billing and notify apply intake's events asynchronously: wait for them.
    pmctl sync --wait 30
    say ""
    say "== what the daemons now hold"
    pmctl call intake intake.estate.get '{"estate_id":"E01"}' | head -1
    pmctl call intake intake.estate.get '{"estate_id":"E02"}' | head -1
    # the move-in notice for E01, and its units booked over the next two days (estate time)
    local d1 d2
    d1=$(TZ=Asia/Shanghai date -d tomorrow +%F) d2=$(TZ=Asia/Shanghai date -d '2 days' +%F)
    pmctl call intake intake.notice.send \
        "{\"estate_id\":\"E01\",\"window\":\"$d1 to $d2\",\"place\":\"1号楼一层物业服务中心\"}" | head -1
    pmctl call intake intake.schedule.plan \
        "{\"estate_id\":\"E01\",\"days\":[{\"date\":\"$d1\"},{\"date\":\"$d2\"}],\"opens\":\"09:00\",\"closes\":\"17:00\",\"slot_minutes\":30,\"counters\":2,\"per_counter\":2,\"place\":\"1号楼一层\"}" | head -1
    pmctl metrics billing | grep -E '^billing_units|pm_consumer_applied_total' | sed 's/^/billing  /' || true
    pmctl metrics notify | grep -E '^notify_(units|contacts)|pm_consumer_applied_total' | sed 's/^/notify   /' || true
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

The move-in backend is running (PM_HOME=$PM_HOME).
  ./pm ctl endpoints                          where each daemon listens
  ./pm ctl call intake intake.unit.get '{"unit_id":"E01/1/101"}'
  ./pm ctl unit E01/1/101                     one unit's whole case, each daemon's part
  ./pm ctl top                                live board: estates' progress, daemons' queues and lag
  ./pm ctl events intake intake.unit. | head  events as JSON lines (--follow to keep going)
  ./pm ctl metrics billing                    counters, gauges, latencies (--prom for Prometheus)
  ./pm ctl queues intake                      work waiting on people
  ./pm ctl import FILE.csv                    import units and owners (UTF-8 or GBK; --dry-run first)
  ./pm ctl token create NAME --role ROLE      an API token (HTTP API, events, board; shown once)
  ./pm status | ./pm down                     see or stop the daemons
EOF
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    up)
        deps "${PACKAGES[@]}"
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
