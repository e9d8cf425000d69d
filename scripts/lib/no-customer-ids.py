#!/usr/bin/env python3
"""Fails if any customer id of a book appears in a /metrics scrape.

  no-customer-ids.py BOOK/customers.ndjson METRICS.txt

Metric labels come from small bounded sets (docs/metrics.md); a customer id in a label
would leak personal data to every dashboard and make the series unbounded.
"""

import json
import sys


def main(customers, metrics):
    ids = set()
    with open(customers) as f:
        for line in f:
            try:
                ids.add(json.loads(line)["customer_id"])
            except (ValueError, KeyError, TypeError):
                pass
    ids.discard("")
    text = open(metrics).read()
    if not ids:
        sys.exit(f"no customer ids read from {customers}")
    if not text:
        sys.exit(f"{metrics} is empty")
    leaked = sorted(i for i in ids if i in text)
    if leaked:
        sys.exit(f"customer ids in {metrics}: {leaked[:5]}")
    print(f"  none of {len(ids)} customer ids appears in {len(text)} bytes of /metrics")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
