#!/usr/bin/env bash
# Crash test: a riskwatch run with a state directory and a webhook endpoint is killed with
# SIGKILL at random points, restarted from its state directory each time, and finally run
# to the end of its input, twice: through a real Kafka-compatible broker (tansu, in memory),
# and in files mode (replay --state). The webhook receiver (`riskwatch receive`) fails 30%
# of requests, answers 10% with 429 and `Retry-After`, and delays 10%. Afterwards:
# - the receiver accepted (signatures verified, de-duplicated by webhook-id) exactly the ids
#   of one uninterrupted replay of the same book, with identical bodies, each case's events
#   in seq order, and nothing is dead-lettered;
# - (Kafka) the output topics hold every output of the replay, each id with the replay's
#   content (a repeated id must repeat the same content).
# `emitted_at`, the wall clock, is left out of every comparison.
#
#   riskwatch gen ─▶ produce ─▶ tansu ─▶ run --state S (kill -9) ─▶ run --state S … ─▶ run to the end ─▶ topics, receiver
#   riskwatch gen ─▶ replay --state S (kill -9) ─▶ replay --state S … ─▶ to the end ───────────────────▶ receiver
#                    replay (same book, no state) ─────────────────────────────────────────────────▶ compare
#
# Environment: RISKWATCH_BIN (default: build), KILLS (6), CUSTOMERS (1500), DAYS (45),
# SEED (random; printed, set it to repeat a run), KEEP_WORK=1 to keep the work directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
KILLS=${KILLS:-6}
CUSTOMERS=${CUSTOMERS:-1500}
DAYS=${DAYS:-45}
SEED=${SEED:-$RANDOM}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-crash.XXXXXX")

pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "crash-test: work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "crash-test: $*"; }
fail() { echo "crash-test: FAIL: $*" >&2; exit 1; }

# shellcheck source=lib/tansu.sh
. "$REPO/scripts/lib/tansu.sh"
tansu_install
if [ -z "${RISKWATCH_BIN:-}" ]; then
  cargo build --release --quiet
  RISKWATCH_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/riskwatch"
fi
RW="$RISKWATCH_BIN"

tansu_start "$WORK/tansu.log"
pids+=("$TANSU_PID")
export RISKWATCH_CRASH_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

# start_receiver NAME: a chaotic receiver writing $WORK/NAME.ndjson; sets RECEIVER (host:port).
start_receiver() {
  "$RW" receive --listen 127.0.0.1:0 --secret-env RISKWATCH_CRASH_SECRET \
    --out "$WORK/$1.ndjson" --chaos-fail-ratio 0.3 --chaos-429-ratio 0.1 \
    --chaos-delay-ratio 0.1 --chaos-delay-ms 200 --chaos-seed "$SEED" \
    >"$WORK/$1.addr" 2>"$WORK/$1.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    RECEIVER=$(grep -oE '127\.0\.0\.1:[0-9]+' "$WORK/$1.addr" | head -1 || true)
    [ -n "$RECEIVER" ] && return 0
    sleep 0.1
  done
  fail "the receiver did not start (see $WORK/$1.log)"
}

# webhook_config RECEIVER: the [[webhook]] table (quick retries, enough attempts).
webhook_config() {
  cat <<HOOK

[[webhook]]
name = "collections"
url = "http://$1/hooks"
events = ["alert.raised", "decision.*", "case.*"]
shadow = "include"
secret_env = "RISKWATCH_CRASH_SECRET"
max_attempts = 30
backoff_initial = "50ms"
backoff_max = "1s"
HOOK
}

# check_receiver NAME STATE: the receiver's events against the replay.
check_receiver() {
  local left
  left=$("$RW" redeliver --state "$2" --list 2>/dev/null | grep -c . || true)
  python3 - "$WORK/$1.ndjson" "$WORK/replay" "$left" <<'PY'
import json, sys
got_path, ref, dead = sys.argv[1], sys.argv[2], sys.argv[3]
def ref_events():
    out = {}
    for kind, key in (("alerts", lambda r: r["alert_id"]), ("decisions", lambda r: r["decision_id"]),
                      ("cases", lambda r: f"{r['case_id']}:{r['seq']}")):
        for line in open(f"{ref}/{kind}.ndjson"):
            r = json.loads(line)
            r.pop("emitted_at", None)
            out[key(r)] = json.dumps(r, sort_keys=True)
    return out
want = ref_events()
got, order = {}, {}
for line in open(got_path):
    e = json.loads(line)
    d = e["data"]
    d.pop("emitted_at", None)
    if e["id"] in got:
        print(f"crash-test: FAIL: the receiver recorded {e['id']} twice", file=sys.stderr); sys.exit(1)
    got[e["id"]] = json.dumps(d, sort_keys=True)
    if e["type"].startswith("case."):
        order.setdefault(d["case_id"], []).append(d["seq"])
missing = [k for k in want if k not in got]
extra = [k for k in got if k not in want]
wrong = [k for k in want if k in got and got[k] != want[k]]
unordered = [c for c, seqs in order.items() if seqs != sorted(seqs)]
print(f"crash-test: receiver: {len(want)} events in replay, {len(got)} accepted, {len(missing)} "
      f"missing, {len(extra)} extra, {len(wrong)} with other bodies, {len(unordered)} cases out "
      f"of seq order, dead letters listed: {dead}")
if missing or extra or wrong or unordered or not want:
    sys.exit(1)
PY
}
for t in customers loans transactions behaviors; do tansu_topic "riskwatch.$t" 4; done
for t in alerts decisions cases rejected; do tansu_topic "out.$t" 2; done
"$RW" gen --customers "$CUSTOMERS" --days "$DAYS" --seed 5 --out "$WORK/book" >/dev/null
cat >"$WORK/cfg.toml" <<CONFIG
[time]
allowed_lateness = "1m"
wall_clock_advance = false
# Partitions read to their end stop holding the frontier back after 2 s, so that a run
# processes while it reads and kills land in the middle of processing too.
idle_timeout = "2s"

[run]
mode = "kafka"
# Small polls, so that a run takes long enough to be killed in the middle of it.
poll_batch = 200

[kafka]
brokers = "$BROKER"

[kafka.topics]
alerts = "out.alerts"
decisions = "out.decisions"
cases = "out.cases"
dead_letter = "out.rejected"
CONFIG
"$RW" produce --input "$WORK/book" --config "$WORK/cfg.toml" >/dev/null
"$RW" replay --input "$WORK/book" --output "$WORK/replay" --config "$WORK/cfg.toml" \
  --workers 2 >"$WORK/replay.log" 2>&1 || fail "replay failed (see $WORK/replay.log)"
start_receiver kafka-receiver
webhook_config "$RECEIVER" >>"$WORK/cfg.toml"

# Kill points: uniformly random in [0.5 s, 5 s) after start, from SEED. They fall in the
# start (restore, seek), between and during checkpoints (every 100 ms), and in sends.
say "seed $SEED; $KILLS kills"
delays=$(python3 -c "import random; r=random.Random($SEED); print(' '.join(f'{r.uniform(0.5, 5.0):.2f}' for _ in range($KILLS)))")
state="$WORK/state"
init=--init-state
killed=0
i=0
for d in $delays; do
  i=$((i + 1))
  "$RW" run --config "$WORK/cfg.toml" --workers 2 --state "$state" $init \
    --checkpoint-every 100ms --until-idle >"$WORK/run-$i.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  init=
  sleep "$d"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    killed=$((killed + 1))
    seq=$("$RW" state inspect --state "$state" 2>/dev/null | python3 -c \
      'import json,sys; m=json.load(sys.stdin)["last"]; print(m["seq"] if m else 0)' || echo "?")
    say "run $i killed after ${d}s (last checkpoint: seq $seq)"
  else
    wait "$pid" || fail "run $i exited with an error (see $WORK/run-$i.log)"
    say "run $i finished before its kill at ${d}s"
  fi
done
# A run that does not finish is a failure of this stage, not a hung suite.
timeout -s KILL 300 "$RW" run --config "$WORK/cfg.toml" --workers 2 --state "$state" $init \
  --checkpoint-every 100ms --until-idle >"$WORK/run-last.log" 2>&1 ||
  fail "the last run failed or did not finish in 300 s (see $WORK/run-last.log)"
say "$(grep -h '^run (kafka' "$WORK/run-last.log" | sed 's/; offsets in.*//')"
[ "$killed" -ge 1 ] || fail "no run was killed: the kill points are too late for this book"

mkdir -p "$WORK/live"
for t in alerts decisions cases; do
  "$RW" consume --topic "out.$t" --config "$WORK/cfg.toml" --out "$WORK/live/$t.ndjson" \
    --idle-ms 1000 >/dev/null
done
python3 - "$WORK/live" "$WORK/replay" "$killed" <<'PY'
import json, sys
live, ref, killed = sys.argv[1], sys.argv[2], sys.argv[3]
ids = {"alerts": lambda r: r["alert_id"], "decisions": lambda r: r["decision_id"],
       "cases": lambda r: (r["case_id"], r["seq"])}
def read(path, key):
    out, dups, differ = {}, 0, []
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        r.pop("emitted_at", None)
        k, v = key(r), json.dumps(r, sort_keys=True)
        if k in out:
            dups += 1
            if out[k] != v:
                differ.append(k)
        out[k] = v
    return out, dups, differ
failed = False
for kind, key in ids.items():
    got, dups, differ = read(f"{live}/{kind}.ndjson", key)
    want, _, _ = read(f"{ref}/{kind}.ndjson", key)
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    print(f"crash-test: {kind}: {len(want)} in replay, {len(got)} distinct in Kafka "
          f"({dups} repeated, {len(differ)} repeated with other content), {len(missing)} "
          f"missing, {len(extra)} extra, {len(wrong)} with other content")
    if missing or extra or wrong or differ or not want:
        failed = True
if failed:
    print(f"crash-test: FAIL after {killed} kills", file=sys.stderr)
    sys.exit(1)
print(f"crash-test: after {killed} kills, Kafka holds exactly the replay's outputs")
PY
check_receiver kafka-receiver "$state" || fail "kafka mode: the receiver's events differ from the replay"

# Files mode: the same kills on replay --state, delivering to a receiver of its own.
start_receiver files-receiver
grep -v '^mode = "kafka"' "$WORK/cfg.toml" | sed '/^\[\[webhook\]\]/,$d' >"$WORK/files.toml"
webhook_config "$RECEIVER" >>"$WORK/files.toml"
fstate="$WORK/files-state"
init=--init-state
killed=0
i=0
for d in $delays; do
  i=$((i + 1))
  "$RW" replay --input "$WORK/book" --output "$WORK/files-out-$i" --config "$WORK/files.toml" \
    --workers 2 --state "$fstate" $init --checkpoint-every 6h >"$WORK/files-$i.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  init=
  sleep "$(python3 -c "print($d / 2)")"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    killed=$((killed + 1))
    say "files run $i killed after $(python3 -c "print($d / 2)")s"
  else
    wait "$pid" || fail "files run $i exited with an error (see $WORK/files-$i.log)"
    say "files run $i finished before its kill"
  fi
done
"$RW" replay --input "$WORK/book" --output "$WORK/files-out-last" --config "$WORK/files.toml" \
  --workers 2 --state "$fstate" $init --checkpoint-every 6h >"$WORK/files-last.log" 2>&1 ||
  fail "the last files run failed (see $WORK/files-last.log)"
[ "$killed" -ge 1 ] || fail "files mode: no run was killed"
check_receiver files-receiver "$fstate" || fail "files mode: the receiver's events differ from the replay"
say "PASS: $KILLS kill points in each mode"
