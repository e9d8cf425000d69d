#!/usr/bin/env bash
# Crash test through a real Kafka-compatible broker (tansu, in memory): a `riskwatch run
# --state` is killed with SIGKILL at random points, restarted from its state directory each
# time, and finally run to the end of its input. Afterwards the output topics must hold
# every output of one uninterrupted replay of the same book, each id with the replay's
# content (a repeated id must repeat the same content; `emitted_at`, the wall clock, aside).
#
#   riskwatch gen ─▶ produce ─▶ tansu ─▶ run --state S (kill -9) ─▶ run --state S … ─▶ run to the end
#                         replay (same book) ─────────────────────────────────────────▶ compare
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
"$RW" run --config "$WORK/cfg.toml" --workers 2 --state "$state" $init --checkpoint-every 100ms \
  --until-idle >"$WORK/run-last.log" 2>&1 || fail "the last run failed (see $WORK/run-last.log)"
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
