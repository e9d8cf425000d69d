#!/usr/bin/env bash
# The strategist's fit loop on a generated book (docs/STRATEGY.md, "The strategist's loop"):
#
#   1. riskwatch gen: a book of $LOOP_CUSTOMERS customers x $LOOP_DAYS days (--profile hard
#      when this riskwatch's gen offers it);
#   2. riskwatch replay --snapshot-at at an observation date a third into the book;
#   3. examples/fit_scorecard.py on half 0 of the customers (toad: WOE binning, logistic
#      regression, points) -> card.json;
#   4. a config: the built-in default strategy (deploy/config/riskwatch.toml) as champion, and
#      a shadow challenger with the same rules whose scorecard is card.json (import_toad,
#      base 0) and whose level table is the fit's suggestion;
#   5. riskwatch replay again with the same --snapshot-at;
#   6. riskwatch evaluate --json on the labels of half 1 only (the held-out customers);
#   7. the challenger's AUC at the observation date must beat the champion's, and at both
#      observation dates (a third and two thirds into the book) the champion's AUC must be
#      at least the AUC of ranking by current DPD alone (issue 12, item 5): exit 1 with a
#      message otherwise.
#
# Steps 1-7 run for each seed of $LOOP_SEEDS (default "42 7 1001"): the properties must
# hold on every seed of the hard book, not on one lucky draw.
#
# Installs toad (and numpy, pandas, scipy, scikit-learn, which toad 0.1.7 does not declare)
# with pip only when `import toad` fails. RISKWATCH_BIN names the binary (default
# $CARGO_TARGET_DIR/release/riskwatch); KEEP_WORK=1 keeps the work directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
BIN="${RISKWATCH_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/riskwatch/target}/release/riskwatch}"
CUSTOMERS="${LOOP_CUSTOMERS:-4000}"
DAYS="${LOOP_DAYS:-150}"
SEEDS="${LOOP_SEEDS:-42 7 1001}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/riskwatch-strategy.XXXXXX")
if [ "${KEEP_WORK:-0}" = 1 ]; then
  trap 'echo "strategy-loop: work kept in $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi
fail() {
  echo "strategy-loop: FAIL: $*" >&2
  exit 1
}
[ -x "$BIN" ] || fail "no riskwatch binary at $BIN (cargo build --release)"

if ! python3 -c "import toad, numpy, pandas, scipy, sklearn" 2>/dev/null; then
  echo "strategy-loop: installing toad with pip"
  python3 -m pip install --quiet toad numpy pandas scipy scikit-learn ||
    fail "pip could not install toad"
fi

profile=()
if "$BIN" gen --help 2>/dev/null | grep -q -- '--profile'; then
  profile=(--profile hard)
fi
loop_seed() {
  SEED=$1
  rm -rf "${WORK:?}"/*
echo "strategy-loop: seed $SEED: gen $CUSTOMERS customers x $DAYS days ${profile[*]}"
"$BIN" gen --customers "$CUSTOMERS" --days "$DAYS" --seed "$SEED" "${profile[@]}" --out "$WORK/book" >/dev/null

# The observation date: the first event's day plus a third of the book, at midnight UTC.
AS_OF=$(python3 - "$WORK/book/transactions.ndjson" "$DAYS" <<'EOF'
import json, sys
from datetime import datetime, timedelta, timezone
with open(sys.argv[1]) as f:
    first = json.loads(f.readline())["ts"]
start = datetime.fromtimestamp(first / 1000, tz=timezone.utc).date()
print((start + timedelta(days=int(sys.argv[2]) // 3)).isoformat())
print((start + timedelta(days=2 * int(sys.argv[2]) // 3)).isoformat())
EOF
)
LATER=$(echo "$AS_OF" | sed -n 2p)
AS_OF=$(echo "$AS_OF" | sed -n 1p)
echo "strategy-loop: observation dates $AS_OF (fit and comparison) and $LATER"

"$BIN" replay --quiet --input "$WORK/book" --output "$WORK/champion" --snapshot-at "$AS_OF,$LATER"

python3 examples/fit_scorecard.py --snapshots "$WORK/champion" --labels "$WORK/book/truth.ndjson" \
  --as-of "$AS_OF" --half 0 --out "$WORK/card.json" --levels-out "$WORK/levels.json"

# The config: the defaults file whole (its champion "baseline"), plus a shadow challenger
# "fitted" with the champion's rules, the fitted card and the fit's level table.
python3 - "$REPO/deploy/config/riskwatch.toml" "$WORK/levels.json" "$WORK/challenger.toml" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
levels = json.load(open(sys.argv[2]))["min_score"]
start = text.index("\n[[strategy]]\n")
end = text.index("\n[strategy.scorecard]\n", start)
rules = text[start:end]
rules = re.sub(r'\nname = "[^"]*"', '\nname = "fitted"', rules, count=1)
rules = re.sub(r'\nrole = "[^"]*"', '\nrole = "challenger"', rules, count=1)
challenger = (
    "\n\n# The fitted challenger (scripts/strategy-loop.sh): the champion's rules, the toad card"
    "\n# from examples/fit_scorecard.py (its points hold the base, so base = 0), and the level"
    "\n# table the fit suggested."
    + rules
    + '\n[strategy.scorecard]\nbase = 0\nimport_toad = "card.json"\n'
    + "\n[strategy.levels]\nmin_score = " + json.dumps(levels) + "\n"
)
open(sys.argv[3], "w").write(text.rstrip("\n") + "\n" + challenger)
EOF
"$BIN" check-config --config "$WORK/challenger.toml" >"$WORK/check-config.txt" ||
  fail "check-config refused the challenger config ($WORK/challenger.toml)"

"$BIN" replay --quiet --input "$WORK/book" --output "$WORK/both" --config "$WORK/challenger.toml" \
  --snapshot-at "$AS_OF,$LATER"

# The held-out labels: truth.ndjson restricted to half 1.
python3 - "$WORK/book/truth.ndjson" "$WORK/holdout.ndjson" <<'EOF'
import json, sys
sys.path.insert(0, "examples")
from fit_scorecard import half_of
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for line in src:
        if line.strip() and half_of(json.loads(line)["customer_id"]) == 1:
            out.write(line)
EOF

"$BIN" evaluate --snapshots "$WORK/both" --labels "$WORK/holdout.ndjson" --out "$WORK/evaluation.json" \
  | sed -n '1,8p'

python3 - "$WORK/evaluation.json" "$AS_OF" "$SEED" <<'EOF'
import json, sys
from datetime import datetime, timezone
report = json.load(open(sys.argv[1]))
as_of = int(datetime.fromisoformat(sys.argv[2]).replace(tzinfo=timezone.utc).timestamp() * 1000)
seed = sys.argv[3]
for j in report["judged"]:
    if j["strategy"] == "baseline" and j["auc"] is not None and j["auc_dpd"] is not None:
        day = datetime.fromtimestamp(j["as_of"] / 1000, tz=timezone.utc).date()
        print(f"strategy-loop: seed {seed}, {day}: champion AUC {j['auc']:.3f}, "
              f"current DPD alone {j['auc_dpd']:.3f}")
        if j["auc"] < j["auc_dpd"]:
            sys.exit(f"strategy-loop: FAIL: seed {seed}, {day}: ranking by the default "
                     f"strategy's level then score (AUC {j['auc']:.3f}) is worse than by "
                     f"current DPD alone ({j['auc_dpd']:.3f})")
at = {}
for j in sorted(report["judged"], key=lambda j: j["as_of"]):
    if j["as_of"] >= as_of:
        at.setdefault(j["strategy"], j)
missing = {"baseline", "fitted"} - set(at)
if missing:
    sys.exit(f"strategy-loop: FAIL: no evaluation of {sorted(missing)} at {sys.argv[2]}")
champion, challenger = at["baseline"], at["fitted"]
for j in (champion, challenger):
    if j["auc"] is None:
        sys.exit(f"strategy-loop: FAIL: {j['strategy']} has no AUC (customers {j['customers']}, bads {j['bads']})")
print(f"strategy-loop: seed {seed}: held-out half 1 at {sys.argv[2]}: {challenger['customers']} customers, "
      f"{challenger['bads']} bads; AUC champion {champion['auc']:.3f} (KS {champion['ks']:.3f}), "
      f"fitted challenger {challenger['auc']:.3f} (KS {challenger['ks']:.3f})")
if not challenger["auc"] > champion["auc"]:
    sys.exit(f"strategy-loop: FAIL: seed {seed}: the fitted challenger's held-out AUC "
             f"{challenger['auc']:.3f} does not beat the champion's {champion['auc']:.3f}")
print("strategy-loop: ok, the fitted card beats the hand-set default on the held-out half")
EOF
}

for seed in $SEEDS; do
  loop_seed "$seed"
done
echo "strategy-loop: ok on seeds $SEEDS"
