#!/usr/bin/env python3
"""Evaluates every dashboard panel query and rule expression through a live Prometheus.

  prom-queries.py PROMETHEUS_URL QUERIES_JSON [--mode files|kafka]

QUERIES_JSON is what `python3 dashboards/generate.py --queries` prints: a list of
{"where", "expr", "kafka_only"}. Each query is sent to PROMETHEUS_URL/api/v1/query with
Grafana's `$__rate_interval` as 1m, and comparisons turned into `bool` ones (`x > 0.5` keeps
only firing series; `x > bool 0.5` returns every series as 0 or 1), so a healthy run still
returns its series.

  --mode files  (default) every query must return a series, except the Kafka-only ones
                (`kafka_only`), which may return none: a files run does not feed them
  --mode kafka  only the Kafka-only queries are sent, and each must return a series

A query that errors or names no existing series fails; exit 1 lists them all.
"""

import json
import re
import sys
import urllib.parse
import urllib.request


def evaluate(base, expr):
    expr = expr.replace("$__rate_interval", "1m")
    expr = re.sub(r"(==|!=|>=|<=|>|<)\s+(?!bool)(?=[-0-9.])", r"\1 bool ", expr)
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.load(urllib.request.urlopen(url, timeout=10))
    if body.get("status") != "success":
        raise RuntimeError(str(body))
    return expr, body["data"]["result"]


def main(argv):
    args = [a for a in argv if not a.startswith("--mode")]
    mode = "files"
    for a in argv:
        if a.startswith("--mode="):
            mode = a.split("=", 1)[1]
    if "--mode" in argv:
        mode = argv[argv.index("--mode") + 1]
        args.remove(mode)
    if len(args) != 2 or mode not in ("files", "kafka"):
        sys.exit(__doc__)
    base, queries = args[0], json.load(open(args[1]))
    failed, allowed, ok = [], [], 0
    for q in queries:
        if mode == "kafka" and not q["kafka_only"]:
            continue
        try:
            expr, result = evaluate(base, q["expr"])
        except Exception as e:  # an HTTP or query error: name the query
            failed.append(f"{q['where']}: {e}: {q['expr']}")
            continue
        if result:
            ok += 1
        elif mode == "files" and q["kafka_only"]:
            allowed.append(q["where"])
        else:
            failed.append(f"{q['where']}: no series: {expr}")
    if mode == "files":
        print(f"  {ok} queries returned series; {len(allowed)} Kafka-only queries empty "
              "as allowed:")
        for a in allowed:
            print(f"    {a}")
    else:
        print(f"  {ok} Kafka-only queries returned series")
    for f in failed:
        print(f"  FAIL {f}", file=sys.stderr)
    return 1 if failed or ok == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
