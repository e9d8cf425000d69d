#!/usr/bin/env python3
"""Fit a points scorecard on riskwatch book snapshots and write it as toad JSON.

The strategist's fit loop (docs/STRATEGY.md, "The strategist's loop"):

    riskwatch replay --input BOOK --output OUT --snapshot-at 2026-02-20
    python3 examples/fit_scorecard.py --snapshots OUT --labels BOOK/truth.ndjson \
        --half 0 --out card.json

then load card.json in a challenger with `[strategy.scorecard] import_toad = "card.json"`.

Steps, with toad (https://github.com/amphibian-dev/toad, `pip install toad`; toad 0.1.7 does
not declare its dependencies, so also numpy, pandas, scipy and scikit-learn):

1. One row per customer at the observation time `--as-of` (default: the first in the file),
   under one strategy (`--strategy`, default: the champion). The features are the
   snapshot's `features` map, which is riskwatch's feature catalogue, so every feature the
   card names is one riskwatch can score. Features that are constant, or missing for more
   than 90 % of the rows, are dropped.
2. The label: a customer is bad when its outcome is bad and dated after the observation
   time (within `--window` of it, when given); one whose outcome date is at or before the
   observation time is already bad and left out. These are `riskwatch evaluate`'s rules, and
   its label formats: the generator's truth.ndjson (`defaults_at` non-null = bad, at that
   time), NDJSON with customer_id, outcome 0/1 and optional outcome_ts (epoch ms) or
   outcome_date, or CSV with a header customer_id,outcome[,outcome_date]. An outcome without
   a date counts as after every observation time.
3. The sample: every labelled customer, or those listed in `--customers-from FILE` (one id a
   line, or NDJSON/CSV with a customer_id field), or one half of the customers by `--half
   0|1`. The half of a customer is the lowest bit of the first 8 bytes of
   SHA-256(customer_id) read as a big-endian integer (`half_of` below): stable across runs,
   machines and books, independent of the row order.
4. WOE binning: toad's chi-merge Combiner (at most `--max-bins` bins, each with at least
   `--min-bin-share` of the rows; nulls in a bin of their own), then information value
   selection (IV >= `--min-iv`, pairwise correlation of WOE <= 0.7 keeps the higher IV),
   then a logistic regression on the WOE. Features whose coefficient comes out negative
   (a bin with more bads scoring more points) are dropped and the regression refitted.
5. Points: toad's scaling, score = A - B * ln(bad:good odds) with B = PDO / ln 2 and
   A = base_score + B * ln(base_odds) where base_odds is good:bad (toad's defaults: 750
   points at good:bad odds 35, PDO 60); the intercept is spread evenly over the features
   (toad's convention), so the config's `base` should be 0. A higher score is less risky,
   as riskwatch reads it.
6. The toad JSON riskwatch's `import_toad` parses (dataflows/src/strategy.rs):
   `{"feature": {"[-inf ~ 0.5)": 41.2, "[0.5 ~ inf)": -3.1, "nan": 12.0, "else": -3.1}}`,
   left-closed bins covering -inf to inf. "nan" scores a null feature: the null bin's points
   when the training data had nulls, otherwise the points of the bin holding most rows.
   "else" (used by riskwatch only for a value outside every bin, which cannot happen when
   the bins cover the real line) is the lowest points of the feature.

It prints the card, the training AUC and KS (of the card as riskwatch scores it, recomputed
from the JSON written), and a suggested level table (`min_score`) from the training scores'
quantiles (`--level-shares`); `--levels-out FILE` also writes that table as JSON.
"""

import argparse
import csv
import hashlib
import json
import math
import os
import sys
from datetime import datetime, timezone

MS_PER_DAY = 86_400_000


def half_of(customer_id):
    """0 or 1: the lowest bit of the first 8 bytes of SHA-256(customer_id), big-endian."""
    digest = hashlib.sha256(customer_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & 1


def parse_instant(text):
    """Epoch ms from epoch ms, a date (its midnight UTC) or an RFC 3339 time."""
    t = str(text).strip()
    if t.isdigit():
        return int(t)
    if len(t) == 10:
        d = datetime.strptime(t, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        return int(d.timestamp() * 1000)
    d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return int(round(d.timestamp() * 1000))


def parse_duration(text):
    """Milliseconds from 90d, 12h, 30m, 10s or 500ms."""
    t = text.strip()
    for unit, ms in (("ms", 1), ("d", MS_PER_DAY), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if t.endswith(unit) and t[: -len(unit)].strip().isdigit():
            return int(t[: -len(unit)]) * ms
    raise ValueError(f"not a duration: {text!r} (e.g. 90d)")


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_labels(path):
    """{customer_id: (bad, at_ms or None)}, as `riskwatch evaluate` reads them.

    Bad rows are counted by reason and left out; the first row of a customer wins."""
    labels, rejected = {}, {}

    def reject(reason):
        rejected[reason] = rejected.get(reason, 0) + 1

    def add(cid, bad, at):
        if cid in labels:
            reject("duplicate")
        else:
            labels[cid] = (bad, at)

    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return labels, rejected
    if lines[0].lstrip().startswith("{"):
        for line in lines:
            try:
                v = json.loads(line)
            except ValueError:
                reject("malformed")
                continue
            cid = v.get("customer_id")
            if not isinstance(cid, str) or not cid:
                reject("missing_customer_id")
                continue
            if "defaults_at" in v:
                d = v["defaults_at"]
                if d is None:
                    add(cid, False, None)
                elif isinstance(d, int) and d >= 0:
                    add(cid, True, d)
                else:
                    reject("invalid_date")
                continue
            o = v.get("outcome")
            if o is None:
                reject("missing_outcome")
                continue
            if o not in (0, 1) or isinstance(o, bool):
                reject("invalid_outcome")
                continue
            at = None
            try:
                if v.get("outcome_ts") is not None:
                    at = v["outcome_ts"]
                    if not isinstance(at, int) or at < 0:
                        raise ValueError
                elif v.get("outcome_date") is not None:
                    at = parse_instant(v["outcome_date"])
            except (ValueError, TypeError):
                reject("invalid_date")
                continue
            add(cid, o == 1, at)
    else:
        header = [h.strip().lower() for h in lines[0].split(",")]
        if "customer_id" not in header or "outcome" not in header:
            sys.exit(f"{path}: a CSV labels file needs a header with customer_id and outcome "
                     f"(and optionally outcome_date); found {lines[0]!r}")
        ci, oi = header.index("customer_id"), header.index("outcome")
        di = header.index("outcome_date") if "outcome_date" in header else None
        for line in lines[1:]:
            cells = [c.strip() for c in line.split(",")]
            cell = lambda i: cells[i] if i is not None and i < len(cells) and cells[i] else None
            cid, o = cell(ci), cell(oi)
            if cid is None:
                reject("missing_customer_id")
                continue
            if o is None:
                reject("missing_outcome")
                continue
            if o not in ("0", "1"):
                reject("invalid_outcome")
                continue
            at = None
            if cell(di) is not None:
                try:
                    at = parse_instant(cell(di))
                except ValueError:
                    reject("invalid_date")
                    continue
            add(cid, o == "1", at)
    return labels, rejected


def bad_at(label, t, window):
    """True/False: bad after observation time t (within window); None: already bad at t."""
    bad, at = label
    if not bad:
        return False
    if at is None:
        return True
    if at <= t:
        return None
    return window is None or at <= t + window


def read_ids(path):
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            if s.startswith("{"):
                cid = json.loads(s).get("customer_id")
            else:
                cid = s.split(",")[0].strip()
                if cid.lower() == "customer_id":
                    continue
            if cid:
                ids.add(cid)
    return ids


def read_snapshots(path, as_of, strategy):
    """(as_of, strategy, {customer_id: features}) of the chosen observation and strategy."""
    if os.path.isdir(path):
        path = os.path.join(path, "snapshots.ndjson")
    times, strategies, champions = set(), [], []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                rows.append((r["as_of"], r["strategy"], r["customer_id"], r["features"]))
            except (ValueError, KeyError) as e:
                sys.exit(f"{path} line {n}: not a snapshot record ({e})")
            times.add(r["as_of"])
            if r["strategy"] not in strategies:
                strategies.append(r["strategy"])
            if not r.get("shadow", False) and r["strategy"] not in champions:
                champions.append(r["strategy"])
    if not rows:
        sys.exit(f"{path}: no snapshot records")
    times = sorted(times)
    if as_of is None:
        as_of = times[0]
    else:
        # Snapshots round the observation time up to the tick: take the first at or after.
        later = [t for t in times if t >= as_of]
        if not later:
            sys.exit(f"no snapshot at or after {iso(as_of)}; the file has "
                     + ", ".join(iso(t) for t in times))
        as_of = later[0]
    if strategy is None:
        # The champion: the first strategy not in shadow (in split mode, the first listed).
        strategy = (champions or strategies)[0]
    elif strategy not in strategies:
        sys.exit(f"no strategy {strategy!r} in the snapshots; they have {', '.join(strategies)}")
    by_customer = {cid: feats for t, s, cid, feats in rows if t == as_of and s == strategy}
    return as_of, strategy, by_customer, times, strategies


def auc_ks(risk, bad):
    """AUC (ties count half) and KS of `risk` (higher = riskier) against 0/1 `bad`."""
    import numpy as np
    from scipy.stats import rankdata

    risk, bad = np.asarray(risk, float), np.asarray(bad, int)
    nb, ng = int(bad.sum()), int(len(bad) - bad.sum())
    if nb == 0 or ng == 0:
        return None, None
    ranks = rankdata(risk)
    auc = (ranks[bad == 1].sum() - nb * (nb + 1) / 2) / (nb * ng)
    order = np.argsort(-risk, kind="mergesort")
    r, b = risk[order], bad[order]
    cb, cg = np.cumsum(b) / nb, np.cumsum(1 - b) / ng
    last = np.r_[r[1:] != r[:-1], True]  # KS only at the end of a run of tied risks
    ks = float(np.max(np.abs(cb - cg)[last]))
    return float(auc), ks


def fmt_bound(x):
    if x == -math.inf:
        return "-inf"
    if x == math.inf:
        return "inf"
    return repr(float(x))


def score_card(card, frame):
    """Scores as riskwatch computes them from the toad JSON: Σ points of each feature's bin."""
    import numpy as np

    total = np.zeros(len(frame))
    for feature, bins in card.items():
        values = frame[feature].to_numpy(dtype=float)
        pts = np.full(len(values), bins.get("else", 0.0))
        for label, p in bins.items():
            if label in ("nan", "else"):
                continue
            lo, hi = (float(s) for s in label.strip("[)").split("~"))
            pts[(values >= lo) & (values < hi)] = p
        pts[np.isnan(values)] = bins.get("nan", 0.0)
        total += pts
    return total


def main():
    ap = argparse.ArgumentParser(
        description="Fit a points scorecard (WOE + logistic regression, with toad) on "
                    "riskwatch snapshots and write it as toad JSON for import_toad.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", required=True, help="snapshots.ndjson or the directory holding it")
    ap.add_argument("--labels", required=True,
                    help="truth.ndjson, or NDJSON/CSV with customer_id,outcome[,outcome_date]")
    ap.add_argument("--as-of", help="observation time (epoch ms, date or RFC 3339); default the first")
    ap.add_argument("--strategy", help="strategy whose rows to read (default: the champion)")
    ap.add_argument("--window", help="outcome window after the observation time, e.g. 90d")
    side = ap.add_mutually_exclusive_group()
    side.add_argument("--customers-from", help="fit on these customers only (one id a line, or NDJSON/CSV)")
    side.add_argument("--half", type=int, choices=(0, 1), help="fit on this half (half_of: SHA-256 of customer_id)")
    ap.add_argument("--out", required=True, help="the toad JSON card to write")
    ap.add_argument("--base-score", type=float, default=750.0)
    ap.add_argument("--base-odds", type=float, default=35.0, help="good:bad odds at base score")
    ap.add_argument("--pdo", type=float, default=60.0)
    ap.add_argument("--method", default="chi", choices=("chi", "dt", "quantile", "step"),
                    help="toad's binning method (chi-merge by default)")
    ap.add_argument("--max-bins", type=int, default=5)
    ap.add_argument("--min-bin-share", type=float, default=0.05)
    ap.add_argument("--min-iv", type=float, default=0.02)
    ap.add_argument("--decimals", type=int, default=1, help="points are rounded to this")
    ap.add_argument("--level-shares", default="0.80,0.10,0.05,0.025",
                    help="shares of the training sample at levels 0-3 for the suggested min_score")
    ap.add_argument("--levels-out", help="also write the suggested level table as JSON")
    a = ap.parse_args()

    try:
        import numpy as np
        import pandas as pd
        import toad
        from toad.scorecard import ScoreCard
    except ImportError as e:
        sys.exit(f"fit_scorecard.py needs toad with numpy, pandas, scipy and scikit-learn "
                 f"(python3 -m pip install toad numpy pandas scipy scikit-learn): {e}")

    as_of = parse_instant(a.as_of) if a.as_of else None
    window = parse_duration(a.window) if a.window else None
    as_of, strategy, by_customer, times, strategies = read_snapshots(a.snapshots, as_of, a.strategy)
    labels, rejected = read_labels(a.labels)
    keep = None
    if a.customers_from:
        keep = read_ids(a.customers_from)
    ids, ys, already, unlabelled = [], [], 0, 0
    for cid in sorted(by_customer):
        if keep is not None and cid not in keep:
            continue
        if a.half is not None and half_of(cid) != a.half:
            continue
        label = labels.get(cid)
        if label is None:
            unlabelled += 1
            continue
        y = bad_at(label, as_of, window)
        if y is None:
            already += 1
            continue
        ids.append(cid)
        ys.append(int(y))
    sample = ("customers of " + a.customers_from if a.customers_from
              else f"half {a.half}" if a.half is not None else "all customers")
    print(f"fit_scorecard: strategy {strategy}, as of {iso(as_of)} "
          f"(observations: {', '.join(iso(t) for t in times)}); sample: {sample}")
    print(f"  {len(ids)} customers, {sum(ys)} bad after as_of; {already} already bad left out, "
          f"{unlabelled} unlabelled left out" + (f"; label rows rejected: {rejected}" if rejected else ""))
    if sum(ys) < 10 or len(ys) - sum(ys) < 10:
        sys.exit("fit_scorecard: too few bads or goods to fit (need 10 of each)")

    catalogue = sorted(next(iter(by_customer.values())).keys())
    X = pd.DataFrame([{k: by_customer[c].get(k) for k in catalogue} for c in ids],
                     columns=catalogue, dtype=float)
    y = pd.Series(ys, name="bad")
    usable = [c for c in catalogue
              if X[c].isna().mean() <= 0.9 and X[c].nunique(dropna=True) > 1]
    X = X[usable]

    combiner = toad.transform.Combiner()
    combiner.fit(X, y, method=a.method, min_samples=a.min_bin_share, n_bins=a.max_bins,
                 empty_separate=True)
    binned = combiner.transform(X)
    transer = toad.transform.WOETransformer()
    woe = transer.fit_transform(binned, y)
    # Information value of the binned feature: sum over bins of (bad% - good%) * WOE.
    nb, ng = int(y.sum()), int(len(y) - y.sum())
    iv = {}
    for c in usable:
        t = pd.crosstab(binned[c], y).reindex(columns=[0, 1], fill_value=0)
        bad_share = t[1].clip(lower=1) / nb  # toad's WOE counts an empty side as 1
        good_share = t[0].clip(lower=1) / ng
        iv[c] = float(((bad_share - good_share) * np.log(bad_share / good_share)).sum())
    iv = pd.Series(iv)
    # Information value, then drop the lower-IV feature of every pair correlated over 0.7.
    chosen = [c for c in iv.sort_values(ascending=False).index
              if iv[c] >= a.min_iv and woe[c].nunique() > 1]
    kept = []
    for c in chosen:
        if all(abs(np.corrcoef(woe[c], woe[k])[0, 1]) <= 0.7 for k in kept):
            kept.append(c)
    if not kept:
        sys.exit(f"fit_scorecard: no feature has IV >= {a.min_iv}")
    while True:
        card = ScoreCard(combiner=combiner, transer=transer, base_score=a.base_score,
                         base_odds=a.base_odds, pdo=a.pdo, C=0.1, max_iter=1000)
        card.fit(woe[kept], y)
        wrong = [f for f, w in zip(kept, card.coef_) if w <= 0]
        if not wrong or len(wrong) == len(kept):
            break
        kept = [f for f in kept if f not in wrong]

    # Per-feature points of each bin, probed through toad's own scoring so that the JSON
    # gives exactly toad's sub-scores.
    out = {}
    for f in kept:
        splits = [float(s) for s in np.asarray(combiner[f], dtype=float) if not np.isnan(s)]
        edges = [-math.inf] + splits + [math.inf]
        probes = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            probes.append(lo if math.isfinite(lo) else (hi - max(1.0, abs(hi)) if math.isfinite(hi) else 0.0))
        probe = pd.DataFrame({k: [probes[0]] * (len(probes) + 1) for k in kept})
        probe[f] = probes + [np.nan]
        _, sub = card.predict(probe, return_sub=True)
        pts = [round(float(p), a.decimals) for p in sub[f]]
        bins = {f"[{fmt_bound(lo)} ~ {fmt_bound(hi)})": p
                for lo, hi, p in zip(edges[:-1], edges[1:], pts[:-1])}
        if X[f].isna().any():
            bins["nan"] = pts[-1]
        else:
            counts = binned[f].value_counts()
            bins["nan"] = pts[:-1][int(counts.idxmax())]
        bins["else"] = min(pts[:-1])
        out[f] = bins
    assert all(f in catalogue for f in out), "every card feature is a snapshot feature"

    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")

    scores = score_card(out, X)
    toad_scores = card.predict(X[kept])
    drift = float(np.max(np.abs(scores - toad_scores)))
    auc, ks = auc_ks(-scores, ys)
    shares = [float(s) for s in a.level_shares.split(",")]
    cum = np.cumsum(shares)
    min_score = [float(np.round(np.quantile(scores, 1 - c), a.decimals)) for c in cum]
    for i in range(1, len(min_score)):  # riskwatch wants them strictly decreasing
        if min_score[i] >= min_score[i - 1]:
            min_score[i] = min_score[i - 1] - 1
    print(f"  features: {len(usable)} usable of {len(catalogue)}, {len(kept)} in the card "
          f"(IV): " + ", ".join(f"{f} ({iv[f]:.2f})" for f in kept))
    print(f"  scaling: {a.base_score:g} points at good:bad odds {a.base_odds:g}, PDO {a.pdo:g}; "
          f"intercept spread over the features (config base = 0)")
    print(f"  training AUC {auc:.3f}  KS {ks:.3f}  Gini {2 * auc - 1:.3f}  "
          f"(scores {scores.min():.0f}..{scores.max():.0f}; card vs toad max gap {drift:.2f} points)")
    print(f"  suggested [strategy.levels] min_score = {json.dumps(min_score)} "
          f"(levels 0-3 hold {a.level_shares} of the training sample)")
    print(f"  wrote {a.out}")
    if a.levels_out:
        with open(a.levels_out, "w", encoding="utf-8") as fh:
            json.dump({"min_score": min_score, "train_auc": auc, "train_ks": ks,
                       "as_of": as_of, "strategy": strategy, "features": kept}, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
