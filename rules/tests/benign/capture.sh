#!/bin/bash
# Record the benign corpus: `vigil record` of the whole machine, while
# a workload (default benign-workload) runs on a terminal; only the workload's process tree is kept
# (filter.py), gzip-compressed. Run as root from the repository root:
#     rules/tests/benign/capture.sh rules/tests/benign/workload-1.jsonl.gz [WORKLOAD]
set -eu
OUT=$1
WORKLOAD=${2:-benign-workload}
VIGIL=${VIGIL:-target/release/vigil}
HERE=$(dirname "$0")
PIDF=$(mktemp -d /tmp/benign-cap.XXXXXX)/pid
: > "$PIDF"
"$VIGIL" record --out >(python3 "$HERE/filter.py" "$PIDF" | gzip -9 > "$OUT") 2>/dev/null &
REC=$!
sleep 5   # the sensors attach
# benign-capture is bash under a name of its own: every event below it
# carries that name in proc.ancestors, which filter.py keys on. The workload
# itself runs in a plain bash, like commands typed at a prompt.
ln -sf /bin/bash "$(dirname "$PIDF")/benign-capture"
BENIGN_PID_FILE=$PIDF script -qec "$(dirname "$PIDF")/benign-capture -c 'bash $HERE/$WORKLOAD; exit \$?'" /dev/null
sleep 3
kill -INT "$REC"
wait "$REC"
sleep 2   # the filter drains
rm -rf "$(dirname "$PIDF")"
