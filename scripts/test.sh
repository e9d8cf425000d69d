#!/usr/bin/env bash
# riskwatch's whole test suite, as CI runs it (.ci/run calls this script and nothing else).
#
# Stages, in order, stopping at the first failure:
#   setup     scripts/setup.sh: Debian build packages, rustfmt/clippy, Python's jsonschema
#   fmt       cargo fmt --all --check
#   clippy    cargo clippy --release --workspace --all-targets -- -D warnings
#   test      cargo test --release --workspace --no-fail-fast (unit and integration tests)
#   e2e       riskwatch gen (300 customers x 40 days) -> riskwatch replay -> check-contracts
#             on the book and on the outputs
#   strategy  scripts/strategy-loop.sh: the strategist's fit loop on a generated book
#             (4000 customers x 150 days): replay --snapshot-at, examples/fit_scorecard.py
#             (toad) on half the customers, the fitted card as a shadow challenger, replay
#             again; its held-out AUC must beat the default card's (installs toad with pip
#             when it is missing)
#   cluster   the same replay on 1 process x 1 worker, 2 processes x 1 worker and
#             2 processes x 2 workers (timely's cluster mode on loopback) must give the
#             alerts, decisions and cases of 1 process x 2 workers, compared without the
#             wall-clock `emitted_at`
#   metrics   scripts/observability-test.sh: promtool on the rules and their unit tests, the
#             dashboards' regeneration check, and a real Prometheus scraping a running
#             riskwatch, evaluating every panel query and rule expression
#   report    scripts/report-test.sh: riskwatch compare --report on a generated book, the
#             HTML page opened in headless Chromium (every chart rendered, no console
#             message, a screenshot); installs Debian's chromium when it is missing
#   kafka     scripts/kafka-e2e.sh, when it exists (skipped otherwise)
#   crash     scripts/crash-test.sh: runs with a state directory and a webhook endpoint
#             killed with SIGKILL at 6 random points, through Kafka and in files mode;
#             topics and a chaotic receiver must hold exactly an uninterrupted replay's
#             outputs (seed printed; CRASH_SEED repeats a run)
# Prints each stage's time and ends with a line "summary: N passed, N failed[, N skipped]".
#
# One build profile for everything: release. Compiled dependencies are kept outside the
# clone, in $CARGO_TARGET_DIR (default ~/.cache/riskwatch/target), so a second run or a fresh
# clone on the same machine reuses them. Set KEEP_WORK=1 to keep the temporary directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}"
BIN="$CARGO_TARGET_DIR/release/riskwatch"
# The contract checker of the shared/ folder beside the repo (or as CHECK_CONTRACTS says);
# exported for the Rust tests that call it.
# A clone made elsewhere from a local checkout (git clone /path/to/repo "$(mktemp -d)")
# finds it beside the repository it was cloned from.
if [ -z "${CHECK_CONTRACTS:-}" ]; then
  CHECK_CONTRACTS="$REPO/../shared/tools/check-contracts"
  origin=$(git -C "$REPO" remote get-url origin 2>/dev/null || true)
  if [ ! -x "$CHECK_CONTRACTS" ] && [ -d "$origin" ] &&
    [ -x "$origin/../shared/tools/check-contracts" ]; then
    CHECK_CONTRACTS="$(cd "$origin/.." && pwd)/shared/tools/check-contracts"
  fi
fi
export CHECK_CONTRACTS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-test.XXXXXX")

# The small book of the end-to-end stages.
CUSTOMERS=300
DAYS=40

passed=0
failed=0
skipped=0
current=""
stage_start=0
results=()
background=()

now() { local t=${EPOCHREALTIME/,/.}; echo "$t"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

print_results() {
  echo
  echo "=== stage timings"
  local r
  for r in "${results[@]}"; do echo "  $r"; done
}

# The closing line, in the form CI reads: "N passed, N failed[, N skipped]".
summary() {
  if [ "$skipped" -gt 0 ]; then
    echo "summary: $passed passed, $failed failed, $skipped skipped"
  else
    echo "summary: $passed passed, $failed failed"
  fi
}

on_exit() {
  local status=$?
  local pid
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$current" ]; then
    # A stage was cut short by a failing command (set -e) or a signal.
    [ "$status" -ne 0 ] || status=1
    failed=$((failed + 1))
    results+=("$(printf '%-8s FAILED  %7ss' "$current" "$(since "$stage_start")")")
  fi
  if [ "$status" -eq 0 ] && [ -z "${KEEP_WORK:-}" ]; then
    rm -rf "$WORK"
  else
    echo "test: work files kept in $WORK"
  fi
  if [ -n "$current" ]; then
    echo
    echo "test: stage '$current' FAILED (exit $status); the messages above say why"
    print_results
    summary
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stage NAME FUNCTION: runs FUNCTION under set -e; a failure ends the script through on_exit.
stage() {
  current=$1
  echo
  echo "=== stage $1"
  stage_start=$(now)
  "$2"
  results+=("$(printf '%-8s ok      %7ss' "$1" "$(since "$stage_start")")")
  echo "--- stage $1: ok in $(since "$stage_start")s"
  passed=$((passed + 1))
  current=""
}

skip() {
  echo
  echo "=== stage $1: skipped ($2)"
  results+=("$(printf '%-8s skipped  (%s)' "$1" "$2")")
  skipped=$((skipped + 1))
}

# logged LOG COMMAND...: runs COMMAND with its stderr in LOG; on failure shows LOG's tail.
logged() {
  local log=$1
  shift
  if ! "$@" 2>"$log"; then
    echo "test: command failed: $*" >&2
    echo "test: last lines of $log:" >&2
    tail -n 40 "$log" | tr '\r' '\n' | grep -v '^\s*$' | tail -n 20 >&2 || true
    return 1
  fi
}

# The records of an NDJSON output file, without the wall-clock `emitted_at`, sorted.
normalized() {
  python3 -c 'import json, sys
rows = []
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line); r.pop("emitted_at", None); rows.append(json.dumps(r, sort_keys=True))
print("\n".join(sorted(rows)))' "$1"
}

# Two free TCP ports on loopback.
free_ports() {
  python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}

stage_setup() {
  bash scripts/setup.sh
  # Checked now, not after the build: the test, e2e and kafka stages need it.
  [ -x "$CHECK_CONTRACTS" ] || {
    echo "test: $CHECK_CONTRACTS not found: the shared/ folder must sit beside the repo" \
      "(or set CHECK_CONTRACTS)" >&2
    return 1
  }
}

stage_fmt() {
  cargo fmt --all --check
}

stage_clippy() {
  cargo clippy --release --workspace --all-targets -- -D warnings
}

stage_test() {
  # The build first, without a limit (a cold one compiles RocksDB and librdkafka); then the
  # tests, with one: a hung test fails the stage instead of the whole CI job.
  cargo test --release --workspace --no-run
  # --no-fail-fast: every test binary runs, so a failure report names every failing test.
  timeout 1500 cargo test --release --workspace --no-fail-fast
}

stage_e2e() {
  cargo build --release
  logged "$WORK/gen.log" "$BIN" gen --customers "$CUSTOMERS" --days "$DAYS" --out "$WORK/book"
  logged "$WORK/replay.log" "$BIN" replay --input "$WORK/book" --output "$WORK/out" --workers 2
  "$CHECK_CONTRACTS" "$WORK/book" "$WORK/out"
  local alerts
  alerts=$(grep -c . "$WORK/out/alerts.ndjson" || true)
  if [ "$alerts" -eq 0 ]; then
    echo "test: the replay of $CUSTOMERS customers x $DAYS days raised no alert" >&2
    return 1
  fi
  echo "e2e: $alerts alerts, $(grep -c . "$WORK/out/decisions.ndjson" || true) decisions," \
    "$(grep -c . "$WORK/out/cases.ndjson" || true) case events; all files within the contracts"
}

stage_strategy() {
  RISKWATCH_BIN="$BIN" bash scripts/strategy-loop.sh
}

# cluster_run NAME PROCESSES WORKERS: replays the book as PROCESSES x WORKERS into $WORK/NAME.
cluster_run() {
  local name=$1 processes=$2 workers=$3
  if [ "$processes" -eq 1 ]; then
    logged "$WORK/$name.log" timeout 600 "$BIN" replay --input "$WORK/book" \
      --output "$WORK/$name" --workers "$workers" >/dev/null
    return
  fi
  local p1 p2 hosts pid
  read -r p1 p2 <<<"$(free_ports)"
  hosts="127.0.0.1:$p1,127.0.0.1:$p2"
  # Process 0 gathers the alerts and writes the outputs; process 1 writes none.
  timeout 600 "$BIN" replay --input "$WORK/book" --output "$WORK/$name" --workers "$workers" \
    --process 0 --hosts "$hosts" >/dev/null 2>"$WORK/$name-p0.log" &
  pid=$!
  background+=("$pid")
  logged "$WORK/$name-p1.log" timeout 600 "$BIN" replay --input "$WORK/book" \
    --output "$WORK/$name-p1" --workers "$workers" --process 1 --hosts "$hosts" >/dev/null
  if ! wait "$pid"; then
    echo "test: process 0 of the $processes x $workers cluster failed" >&2
    tail -n 20 "$WORK/$name-p0.log" | tr '\r' '\n' | grep -v '^\s*$' >&2 || true
    return 1
  fi
}

stage_cluster() {
  local name processes workers kind n
  for spec in "1x1 1 1" "2x1 2 1" "2x2 2 2"; do
    read -r name processes workers <<<"$spec"
    cluster_run "cluster-$name" "$processes" "$workers"
    for kind in alerts decisions cases; do
      normalized "$WORK/out/$kind.ndjson" >"$WORK/base.$kind"
      normalized "$WORK/cluster-$name/$kind.ndjson" >"$WORK/$name.$kind"
      if ! cmp -s "$WORK/base.$kind" "$WORK/$name.$kind"; then
        echo "test: $processes process(es) x $workers worker(s) gave other $kind than 1 x 2:" >&2
        diff "$WORK/base.$kind" "$WORK/$name.$kind" | head -n 20 >&2 || true
        return 1
      fi
    done
    n=$(cat "$WORK/base.alerts" "$WORK/base.decisions" "$WORK/base.cases" | grep -c . || true)
    echo "cluster: $processes process(es) x $workers worker(s): the same $n records as 1 x 2"
  done
}

stage_metrics() {
  RISKWATCH_BIN="$BIN" bash scripts/observability-test.sh
}

stage_report() {
  RISKWATCH_BIN="$BIN" bash scripts/report-test.sh
}

stage_kafka() {
  RISKWATCH_BIN="$BIN" bash scripts/kafka-e2e.sh
}

stage_crash() {
  RISKWATCH_BIN="$BIN" SEED="${CRASH_SEED:-$RANDOM}" bash scripts/crash-test.sh
}

echo "test: repo $REPO; CARGO_TARGET_DIR=$CARGO_TARGET_DIR; work dir $WORK"
stage setup stage_setup
stage fmt stage_fmt
stage clippy stage_clippy
stage test stage_test
stage e2e stage_e2e
stage strategy stage_strategy
stage cluster stage_cluster
stage metrics stage_metrics
stage report stage_report
if [ -f scripts/kafka-e2e.sh ]; then
  stage kafka stage_kafka
else
  skip kafka "scripts/kafka-e2e.sh does not exist yet"
fi
stage crash stage_crash

print_results
summary
