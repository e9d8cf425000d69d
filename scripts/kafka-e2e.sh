#!/usr/bin/env bash
# End-to-end test through a real Kafka-compatible broker (tansu, in memory):
#
#   riskwatch gen (+2 bad lines) ─▶ riskwatch produce ─▶ tansu ─▶ riskwatch run × 2 processes
#                                                                   (--until-idle)
#                                  riskwatch replay (same book) ─┐       │ alerts, dead letters
#                                                                ▼       ▼
#              alerts, decisions, cases equal after sorting and dropping emitted_at; contracts hold
#
# twice: as is, and under backpressure (tiny bounds, so workers pause). Then a graceful
# stop: SIGTERM to one process of an unbounded 2-process run must stop both, with exit 0 and
# their offsets recorded.
#
# Before the runs, `riskwatch check-config --connect` against the broker must pass and
# print the partition assignment the cluster then logs, worker by worker; with a topic
# that does not exist, it must exit 69 naming it. During the first cluster run, process 0
# serves /metrics to a Prometheus of its own (scripts/lib/prometheus.sh; Debian's package
# is installed when missing): every Kafka-only dashboard query and rule expression must
# return a series (scripts/lib/prom-queries.py --mode kafka), and no customer id of the
# book may appear in the scrape.
#
# tansu is installed into ~/.cache/riskwatch/tansu if missing (`cargo install tansu`, about
# 11-15 minutes cold, with its own target dir so it never locks the project's). Processes
# started here are stopped on exit (trap).
#
# Environment: RISKWATCH_BIN (default: build with cargo and use target/release/riskwatch),
# CUSTOMERS (400), DAYS (30), PARTITIONS (4), WORKERS per process (2), KEEP_WORK=1 to keep the
# work directory, TANSU_BUILD_DIR (/tmp/tansu-build).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
CUSTOMERS=${CUSTOMERS:-400}
DAYS=${DAYS:-30}
PARTITIONS=${PARTITIONS:-4}
WORKERS=${WORKERS:-2}
CHECK_CONTRACTS="${CHECK_CONTRACTS:-$REPO/../shared/tools/check-contracts}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-kafka-e2e.XXXXXX")

pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "kafka-e2e: work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "kafka-e2e: $*"; }
fail() { echo "kafka-e2e: FAIL: $*" >&2; exit 1; }

# shellcheck source=lib/tansu.sh
. "$REPO/scripts/lib/tansu.sh"
# shellcheck source=lib/prometheus.sh
. "$REPO/scripts/lib/prometheus.sh"

# 1. tansu, installed once and cached.
tansu_install

# 2. riskwatch.
if [ -z "${RISKWATCH_BIN:-}" ]; then
  cargo build --release --quiet
  RISKWATCH_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/riskwatch"
fi
RW="$RISKWATCH_BIN"
[ -x "$RW" ] || fail "no riskwatch binary at $RW"

# 3. The broker, in memory, on a free port.
tansu_start "$WORK/tansu.log"
pids+=("$TANSU_PID")
say "tansu on $BROKER"

# 4. Topics (the broker does not create them on demand).
for t in customers loans transactions behaviors; do
  tansu_topic "riskwatch.$t" "$PARTITIONS"
done

# 5. A small book, with two bad records for the dead-letter path.
"$RW" gen --customers "$CUSTOMERS" --days "$DAYS" --seed 11 --out "$WORK/book" >/dev/null
echo '{"event_id":"BAD1","customer_id":"C0000001","ts":' >>"$WORK/book/transactions.ndjson"
echo '{"event_id":"BAD2","customer_id":"C0000002","ts":1767225600000,"type":"purchase"}' \
  >>"$WORK/book/transactions.ndjson"

# 6. Config: lateness at least the producer's skew (one in-order producer: none), no
#    wall-clock advance, so the live run must equal replay. Each case below writes to its
#    own output topics ([kafka.topics] appended per case).
cat >"$WORK/riskwatch.toml" <<CONFIG
[time]
allowed_lateness = "1m"
wall_clock_advance = false

[run]
mode = "kafka"

[kafka]
brokers = "$BROKER"
CONFIG

# 7. Produce the book in event-time order.
"$RW" produce --input "$WORK/book" --config "$WORK/riskwatch.toml"

# 8. The reference: replay of the same book.
"$RW" replay --input "$WORK/book" --output "$WORK/replay" --config "$WORK/riskwatch.toml" \
  --workers 2 >"$WORK/replay.log" 2>&1 || fail "replay failed (see $WORK/replay.log)"

# The config of one case: its own output topics, created, appended as [kafka.topics].
case_config() {
  local name=$1 cfg="$WORK/$1.toml"
  cp "$WORK/riskwatch.toml" "$cfg"
  for t in alerts decisions cases rejected; do
    tansu_topic "$name.$t" 2
  done
  printf '\n[kafka.topics]\nalerts = "%s.alerts"\ndecisions = "%s.decisions"\n' "$name" "$name" >>"$cfg"
  printf 'cases = "%s.cases"\ndead_letter = "%s.rejected"\n' "$name" "$name" >>"$cfg"
}

# 9-11. The live pipeline as a 2-process cluster until every partition is consumed; its
#       outputs read back from Kafka must equal replay's (order and emitted_at aside), the
#       dead letters must carry their headers, and everything must meet the contracts.
#       Usage: cluster_case NAME [VAR=VALUE ...] (environment of both processes).
cluster_case() {
  local name=$1
  shift
  local cfg="$WORK/$name.toml"
  [ -f "$cfg" ] || case_config "$name"
  local p0 p1 hosts t0 rc0=0 rc1=0 metrics
  p0=$(free_port)
  p1=$(free_port)
  hosts="127.0.0.1:$p0,127.0.0.1:$p1"
  t0=$(date +%s.%N)
  for i in 0 1; do
    # With METRICS_PORT, process 0 serves /metrics there, and keeps serving after the run
    # until the scrape is checked (then SIGTERM ends its linger).
    metrics=()
    if [ "$i" = 0 ] && [ -n "${METRICS_PORT:-}" ]; then
      metrics=(--metrics-addr "127.0.0.1:$METRICS_PORT" --metrics-linger 120)
    fi
    env "$@" timeout 600 "$RW" run --config "$cfg" --workers "$WORKERS" \
      --process "$i" --hosts "$hosts" --until-idle "${metrics[@]}" >"$WORK/$name-run-$i.log" 2>&1 &
    pids+=($!)
    eval "run_pid_$i=$!"
  done
  wait "$run_pid_1" || rc1=$?
  if [ -n "${METRICS_PORT:-}" ]; then
    for _ in $(seq 1 600); do
      grep -q '^run (kafka' "$WORK/$name-run-0.log" && break
      kill -0 "$run_pid_0" 2>/dev/null || break
      sleep 0.1
    done
    grep -q '^run (kafka' "$WORK/$name-run-0.log" ||
      fail "$name: process 0 did not finish its run (see $WORK/$name-run-0.log)"
    kafka_metrics_check "$name"
    kill -TERM "$run_pid_0"
  fi
  wait "$run_pid_0" || rc0=$?
  # The SIGTERM reaches riskwatch twice (timeout(1) forwards it, then signals its process
  # group); riskwatch takes a repeat within 1 s as the same request, so this exits 0.
  [ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] ||
    fail "$name: riskwatch run exited $rc0/$rc1 (see $WORK/$name-run-*.log)"
  say "$name: cluster run $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")s;" \
    "$(grep -h '^run (kafka' "$WORK/$name"-run-*.log | sed 's/; offsets in.*//' | tr '\n' ' ')"
  mkdir -p "$WORK/$name"
  for t in alerts decisions cases; do
    "$RW" consume --topic "$name.$t" --config "$cfg" --out "$WORK/$name/$t.ndjson" \
      --idle-ms 1000 >/dev/null
  done
  "$RW" consume --topic "$name.rejected" --config "$cfg" \
    --out "$WORK/$name/rejected-meta.ndjson" --idle-ms 1000 --meta >/dev/null
  python3 - "$WORK" "$name" <<'PY' || exit 1
import json, sys, collections
work, name = sys.argv[1], sys.argv[2]
def records(path):
    out = []
    for line in open(path):
        if line.strip():
            a = json.loads(line)
            a.pop("emitted_at", None)
            out.append(json.dumps(a, sort_keys=True))
    return sorted(out)
counts = {}
for kind in ("alerts", "decisions", "cases"):
    live, ref = records(f"{work}/{name}/{kind}.ndjson"), records(f"{work}/replay/{kind}.ndjson")
    if live != ref:
        a, b = collections.Counter(live), collections.Counter(ref)
        only_live, only_ref = list((a - b).elements()), list((b - a).elements())
        print(f"kafka-e2e: FAIL: {name}: {len(live)} {kind} through Kafka, {len(ref)} from "
              f"replay; {len(only_live)} only in Kafka, {len(only_ref)} only in replay",
              file=sys.stderr)
        for x in only_live[:3]: print("  only kafka: ", x[:300], file=sys.stderr)
        for x in only_ref[:3]: print("  only replay:", x[:300], file=sys.stderr)
        sys.exit(1)
    counts[kind] = len(ref)
if not counts["alerts"]:
    print("kafka-e2e: FAIL: replay produced no alerts; the comparison proves nothing",
          file=sys.stderr)
    sys.exit(1)
dead = [json.loads(l) for l in open(f"{work}/{name}/rejected-meta.ndjson") if l.strip()]
want = sorted(json.loads(l)["reason"] for l in open(f"{work}/replay/rejected.ndjson") if l.strip())
got = sorted(d["headers"].get("reason") for d in dead)
if got != want:
    print(f"kafka-e2e: FAIL: {name}: dead letters {got}, replay rejected {want}", file=sys.stderr)
    sys.exit(1)
for d in dead:
    h, v = d["headers"], d["value"]
    if set(h) != {"reason", "source", "partition", "offset"} or v["reason"] != h["reason"] \
            or v["source"] != h["source"] or str(v["offset"]) != h["offset"]:
        print(f"kafka-e2e: FAIL: dead letter headers/value disagree: {d}", file=sys.stderr)
        sys.exit(1)
with open(f"{work}/{name}/rejected.ndjson", "w") as f:
    for d in dead: f.write(json.dumps(d["value"]) + "\n")
print(f"kafka-e2e: {name}: equal to replay through Kafka: {counts['alerts']} alerts, "
      f"{counts['decisions']} decisions, {counts['cases']} case events; dead letters {got}")
PY
  python3 "$CHECK_CONTRACTS" "$WORK/$name" ||
    fail "$name: outputs read from Kafka break the contracts"
}

# The Kafka-mode scrape (METRICS_PORT, during the plain case): process 0's /metrics through
# a real Prometheus; every Kafka-only query must return a series; no customer id leaks.
kafka_metrics_check() {
  local name=$1 i ok=0
  # A few scrapes after the run's last report, for rate() and increase() over them.
  sleep 3
  python3 "$REPO/dashboards/generate.py" --queries >"$WORK/queries.json"
  for i in 1 2 3; do
    if python3 "$REPO/scripts/lib/prom-queries.py" "$PROM_URL" "$WORK/queries.json" \
      --mode kafka >"$WORK/prom-queries.txt" 2>&1; then
      ok=1
      break
    fi
    sleep 2
  done
  sed 's/^/kafka-e2e: prometheus: /' "$WORK/prom-queries.txt"
  [ $ok = 1 ] || fail "$name: Kafka-only dashboard queries without series (see above)"
  curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/kafka-metrics.txt" ||
    fail "$name: /metrics of process 0 did not answer"
  python3 "$REPO/scripts/lib/no-customer-ids.py" "$WORK/book/customers.ndjson" \
    "$WORK/kafka-metrics.txt" | sed 's/^ */kafka-e2e: scrape: /' ||
    fail "$name: customer ids in the Kafka-mode scrape"
}

# 9a. check-config --connect against the broker, before the runs: every check passes, and
#     the assignment it prints for 2 processes x WORKERS workers is what the cluster logs
#     at start (compared after the plain case below). With a topic that does not exist,
#     it exits 69 naming the topic.
case_config plain
"$RW" check-config --config "$WORK/plain.toml" --connect --processes 2 --workers "$WORKERS" \
  --timeout-ms 10000 >"$WORK/connect.txt" 2>&1 ||
  fail "check-config --connect against tansu exited $? (see $WORK/connect.txt)"
grep -q '^FAIL' "$WORK/connect.txt" && fail "check-config --connect printed a FAIL (see $WORK/connect.txt)"
grep -q "^ok: input topic \"riskwatch.customers\" (customers): $PARTITIONS partitions\$" \
  "$WORK/connect.txt" || fail "check-config --connect: no partition count (see $WORK/connect.txt)"
rc=0
RISKWATCH__KAFKA__TOPICS__CASES='"e2e.no-such-topic"' "$RW" check-config \
  --config "$WORK/plain.toml" --connect --timeout-ms 10000 >"$WORK/connect-missing.txt" 2>&1 || rc=$?
[ $rc -eq 69 ] || fail "check-config --connect with a missing topic exited $rc, not 69 (see $WORK/connect-missing.txt)"
grep -q '^FAIL: output topic "e2e.no-such-topic" (cases): ' "$WORK/connect-missing.txt" ||
  fail "check-config --connect did not name the missing topic (see $WORK/connect-missing.txt)"
say "check-config --connect: $(grep -c '^ok:' "$WORK/connect.txt") checks ok against tansu;" \
  "a missing topic exits 69: $(grep '^FAIL' "$WORK/connect-missing.txt" | cut -c1-60)"

# 9b. A Prometheus of its own, scraping process 0 of the plain case.
prometheus_install
METRICS_PORT=$(free_port)
prometheus_start "$WORK/prometheus" "127.0.0.1:$METRICS_PORT"
pids+=("$PROM_PID")

cluster_case plain
METRICS_PORT=
# The assignment check-config printed is the one the cluster's workers logged.
sed -n 's/^  \(process [0-9]* worker [0-9]*: .*\)$/\1/p' "$WORK/connect.txt" | sort >"$WORK/connect-assignment.txt"
sed -n 's/.*kafka source: \(process [0-9]* worker [0-9]*: .*\)$/\1/p' "$WORK"/plain-run-*.log | sort \
  >"$WORK/run-assignment.txt"
[ -s "$WORK/run-assignment.txt" ] || fail "the cluster logged no assignment (see $WORK/plain-run-0.log)"
diff "$WORK/connect-assignment.txt" "$WORK/run-assignment.txt" >&2 ||
  fail "check-config --connect's assignment differs from the cluster's (< check-config, > run)"
say "the assignment check-config --connect printed is the cluster's:" \
  "$(head -1 "$WORK/run-assignment.txt"), ... ($(wc -l <"$WORK/run-assignment.txt") workers)"
# The same under backpressure: tiny bounds make the workers pause and resume; nothing may be
# lost or repeated.
cluster_case backpressure RISKWATCH__RUN__MAX_PENDING_EVENTS=500 \
  RISKWATCH__RUN__MAX_LAG='"50ms"' RISKWATCH__RUN__POLL_BATCH=200

# 12. Signals on an unbounded 2-process run. SIGHUP: to process 1 it is ignored (never
#     fatal); to process 0 after a broken edit of the config, the change is rejected with
#     the key; after a valid edit, applied at one event time. Then a graceful stop: SIGTERM
#     to process 1 only must stop both (the stop is broadcast), each exits 0 and records
#     its offsets.
cp "$WORK/plain.toml" "$WORK/live.toml"
P0=$(free_port)
P1=$(free_port)
HOSTS="127.0.0.1:$P0,127.0.0.1:$P1"
for i in 0 1; do
  "$RW" run --config "$WORK/live.toml" --workers 1 --process "$i" --hosts "$HOSTS" \
    --state "$WORK/state-sigterm-$i" --init-state >"$WORK/run-sigterm-$i.log" 2>&1 &
  pids+=($!)
  eval "sig_pid_$i=$!"
done
for _ in $(seq 1 120); do
  grep -q "kafka source: static assignment" "$WORK/run-sigterm-1.log" && break
  sleep 0.5
done
sleep 2
# wait_log FILE PATTERN WHAT: up to 30 s for PATTERN to appear in FILE.
wait_log() {
  for _ in $(seq 1 60); do
    grep -q "$2" "$1" && return 0
    sleep 0.5
  done
  fail "$3 (see $1)"
}
kill -HUP "$sig_pid_1"
sed -i 's/^allowed_lateness = .*/allowed_lateness = "7 parsecs"/' "$WORK/live.toml"
kill -HUP "$sig_pid_0"
wait_log "$WORK/run-sigterm-0.log" "config change rejected.*allowed_lateness" \
  "a broken config was not rejected"
cp "$WORK/plain.toml" "$WORK/live.toml"
printf '\n[[strategy]]\nname = "baseline"\nrole = "champion"\n' >>"$WORK/live.toml"
printf 'levels = { min_score = [0, -1, -2, -3] }\n[[strategy.rule]]\n' >>"$WORK/live.toml"
printf 'id = "multi_lending"\nseverity = "high"\nexpr = "distinct_lenders_30d >= 2"\n' >>"$WORK/live.toml"
kill -HUP "$sig_pid_0"
wait_log "$WORK/run-sigterm-0.log" "strategy change applied" "a valid config change was not applied"
for i in 0 1; do
  pid_var="sig_pid_$i"
  kill -0 "${!pid_var}" 2>/dev/null || fail "process $i died on SIGHUP (see $WORK/run-sigterm-$i.log)"
done
say "SIGHUP: $(grep -o 'strategy change applied.*' "$WORK/run-sigterm-0.log" | head -1 | cut -c1-160)"
kill -TERM "$sig_pid_1"
for i in 0 1; do
  pid_var="sig_pid_$i"
  rc=0
  timeout 60 tail --pid="${!pid_var}" -f /dev/null ||
    fail "riskwatch run (process $i) did not stop after SIGTERM"
  wait "${!pid_var}" || rc=$?
  [ $rc -eq 0 ] || fail "riskwatch run (process $i) exited $rc after SIGTERM (see $WORK/run-sigterm-$i.log)"
done
for i in 0 1; do
  "$RW" state inspect --state "$WORK/state-sigterm-$i" --config "$WORK/live.toml" --workers 1 \
    --processes 2 >"$WORK/state-sigterm-$i.json" || fail "state of process $i cannot be read"
done
python3 - "$WORK" "$PARTITIONS" <<'PY' || fail "positions not checkpointed on SIGTERM"
import json, sys
files = [json.load(open(f"{sys.argv[1]}/state-sigterm-{i}.json")) for i in (0, 1)]
positions = [p for f in files for p in f["positions"]]
n = len(positions)
assert n == 4 * int(sys.argv[2]), f"{n} positions"
consumed = sum(max(p["next_offset"] or 0, 0) for p in positions)
assert consumed > 0, "nothing consumed"
fronts = [f["last"]["frontier"] for f in files]
assert fronts[0] == fronts[1], f"frontiers {fronts}"
print(f"kafka-e2e: SIGTERM to process 1: both exit 0, {n} partition positions checkpointed "
      f"({consumed} records consumed), complete before ts {fronts[0]}")
PY
say "PASS"
