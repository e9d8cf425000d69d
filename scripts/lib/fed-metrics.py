#!/usr/bin/env python3
"""Checks that a /metrics scrape of a files-mode `riskwatch run` with a state directory and a
[[webhook]] endpoint shows what such a run feeds.

  fed-metrics.py METRICS_TXT

Series present are not enough for the counters a registry exposes at 0 from the start
(checkpoint commits, the duration histogram): those must have counted something. Exit 1
names what is missing (scripts/observability-test.sh retries while deliveries are reported).
"""

import re
import sys


def main(argv):
    if len(argv) != 1:
        sys.exit(__doc__)
    text = open(argv[0]).read()

    def values(name, labels=""):
        pat = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+(\S+)(?:\s+\d+)?$", re.M)
        return [float(v) for lab, v in pat.findall(text) if labels in (lab or "")]

    need = {
        # --state DIR: the checkpoint metrics.
        "checkpoints committed": sum(values("riskwatch_checkpoint_commits_total")) > 0,
        "checkpoint durations observed":
            sum(values("riskwatch_checkpoint_duration_seconds_count")) > 0,
        "checkpoint bytes written": sum(values("riskwatch_checkpoint_written_bytes_total")) > 0,
        "state size": sum(values("riskwatch_checkpoint_state_bytes")) > 0,
        # [[webhook]]: the delivery metrics, every outcome.
        "webhooks delivered":
            sum(values("riskwatch_delivery_attempts_total", 'outcome="delivered"')) > 0,
        "retried and dead series":
            bool(values("riskwatch_delivery_attempts_total", 'outcome="retried"'))
            and bool(values("riskwatch_delivery_attempts_total", 'outcome="dead"')),
        "outbox depth": bool(values("riskwatch_delivery_outbox_events")),
        # Every run: the level, case and ring gauges.
        "level mix": bool(values("riskwatch_strategy_customers")),
        "level transitions": bool(values("riskwatch_strategy_level_transitions_total")),
        "open cases": bool(values("riskwatch_cases_open")),
        "overdue amount": bool(values("riskwatch_cases_overdue_amount")),
        "rings": bool(values("riskwatch_rings_active")),
        "ring members": bool(values("riskwatch_rings_members")),
    }
    missing = [k for k, ok in need.items() if not ok]
    if missing:
        print("  missing: " + ", ".join(missing))
        return 1
    print("  fed: " + ", ".join(need))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
