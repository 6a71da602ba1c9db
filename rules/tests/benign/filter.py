#!/usr/bin/env python3
"""Keep the events of one process tree from a `vigil record` stream.

    vigil record --out - | filter.py PIDFILE > tree.jsonl

PIDFILE is empty until the tree's root writes its pid there; from then on an
event is kept when its pid is the root or its parent pid is a kept pid
(which keeps the pid too). A kept pid that exits (an exit event of the
thread-group leader) leaves the set, so a recycled pid is not adopted.
Every event of the machine before that is dropped.
"""
import json
import sys


def main():
    pidfile = sys.argv[1]
    root = None
    tree = set()
    out = sys.stdout
    for line in sys.stdin:
        if root is None:
            try:
                with open(pidfile) as f:
                    txt = f.read().strip()
                if txt:
                    root = int(txt)
                    tree.add(root)
            except OSError:
                pass
            if root is None:
                continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        pid, ppid = ev.get("proc.pid"), ev.get("proc.ppid")
        if pid in tree or ppid in tree:
            tree.add(pid)
            out.write(line)
            if ev.get("evt.type") == "exit" and ev.get("proc.tid", pid) == pid and pid != root:
                tree.discard(pid)


if __name__ == "__main__":
    main()
