#!/usr/bin/env python3
"""Keep the events of the benign workload from a `vigil record` stream.

    vigil record --out - | filter.py PIDFILE > workload.jsonl

An event is kept when `benign-capture` (the name capture.sh gives the
workload's wrapper) is its process's name or among its ancestors, or when its
pid or parent pid is already kept (for trees deeper than the 16 ancestors
the sensor names; a kept pid leaves the set at its exit event, so a recycled
pid is not adopted). PIDFILE holds the workload's pid once it started.

The wrapper's own exec event (bash run through a symlink in /tmp) is
dropped: it belongs to the harness, not to the work.

Opens are thinned: per process, at most OPENS_PER_DIR opens of files in one
directory with the same flags and the same outcome are kept (mandb alone
opens ~115,000 manual pages). Exec, connect and exit events are all kept.
"""
import json
import os
import sys

MARK = "benign-capture"
OPENS_PER_DIR = 20


def main():
    pidfile = sys.argv[1]
    root = None
    tree = set()
    seen = {}
    out = sys.stdout
    for line in sys.stdin:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if root is None:
            try:
                with open(pidfile) as f:
                    txt = f.read().strip()
                if txt:
                    root = int(txt)
                    tree.add(root)
            except OSError:
                pass
        pid, ppid = ev.get("proc.pid"), ev.get("proc.ppid")
        mine = (ev.get("proc.name") == MARK or MARK in (ev.get("proc.ancestors") or [])
                or pid in tree or ppid in tree)
        if not mine:
            continue
        if ev.get("proc.name") == MARK and ev.get("evt.type") == "exec":
            continue  # the harness's own wrapper (a symlink in /tmp), not the work
        tree.add(pid)
        if ev.get("evt.type") == "exit" and ev.get("proc.tid", pid) == pid and pid != root:
            tree.discard(pid)
        if ev.get("evt.type") == "open":
            key = (pid, os.path.dirname(ev.get("file.path", "")),
                   tuple(ev.get("file.flags") or []), ev.get("evt.ret", 0) >= 0)
            n = seen.get(key, 0)
            seen[key] = n + 1
            if n >= OPENS_PER_DIR:
                continue
        out.write(line)


if __name__ == "__main__":
    main()
