#!/usr/bin/env python3
"""Count the test cases per shipped rule: positive (the rule must fire:
`expect`, or `expect_count` > 0) and negative (it must not: `expect_not`, or
`expect_count` 0). Prints `rule<TAB>positive<TAB>negative` for every rule in
rules/*.yaml; rules/README.md's Falco table quotes these numbers. Run from
the repo root: python3 rules/tests/gen/case_counts.py [RULE...]
"""
import glob
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    rules = []
    for f in sorted(glob.glob(os.path.join(ROOT, "*.yaml"))):
        for it in yaml.safe_load(open(f)) or []:
            if "rule" in it and "condition" in it and it["rule"] not in rules:
                rules.append(it["rule"])
    pos = {r: 0 for r in rules}
    neg = {r: 0 for r in rules}
    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "*.yaml"))):
        for c in yaml.safe_load(open(f)) or []:
            counts = c.get("expect_count") or {}
            for r in set(c.get("expect") or []) | {r for r, n in counts.items() if n > 0}:
                pos[r] = pos.get(r, 0) + 1
            for r in set(c.get("expect_not") or []) | {r for r, n in counts.items() if n == 0}:
                neg[r] = neg.get(r, 0) + 1
    want = sys.argv[1:] or rules
    for r in want:
        print(f"{r}\t{pos.get(r, 0)}\t{neg.get(r, 0)}")


if __name__ == "__main__":
    main()
