#!/usr/bin/env python3
"""Validates NDJSON files against one JSON Schema of the repo (schemas/).

  check-schema.py SCHEMA FILE...

Prints a line per file (records, violations, the first few reasons) and exits 1 when a
record violates the schema, or a file has no records. Needs jsonschema (scripts/setup.sh).
"""
import json
import sys

from jsonschema import Draft202012Validator


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    schema = json.load(open(argv[0]))
    Draft202012Validator.check_schema(schema)
    v = Draft202012Validator(schema)
    failed = False
    for path in argv[1:]:
        n = bad = 0
        reasons = []
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                n += 1
                errs = list(v.iter_errors(json.loads(line)))
                if errs:
                    bad += 1
                    if len(reasons) < 3:
                        reasons.append(f"line {i}: {errs[0].json_path}: {errs[0].message}")
        print(f"{path}: {n} records, {bad} violate {argv[0]}" + "".join("\n  " + r for r in reasons))
        failed |= bad > 0 or n == 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
