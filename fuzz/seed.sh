#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds from the repository's own test
# files. Run from anywhere; safe to re-run (existing corpus entries stay).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
c="$here/corpus"
mkdir -p "$c/rule_loader" "$c/condition" "$c/decode" "$c/replay_line" "$c/config"

# Rule files: shipped rules, their test cases, fixtures, the rules.d example.
for f in "$repo"/rules/*.yaml "$repo"/rules/tests/*.yaml \
         "$repo"/tests/fixtures/engine/*.yaml "$repo"/tests/fixtures/engine/*/*.yaml \
         "$repo"/tests/fixtures/engine/*/*/*.yaml "$repo"/packaging/rules.d/*.example; do
    [ -f "$f" ] && cp "$f" "$c/rule_loader/$(echo "$f" | sed "s|$repo/||; s|/|_|g")"
done

# Conditions: every one-line `condition:` of those files, one seed each.
n=0
grep -h '^ *condition: ' "$repo"/rules/*.yaml "$repo"/tests/fixtures/engine/*/*.yaml |
    sed 's/^ *condition: //' | while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "$line" > "$c/condition/cond-$n"
    done

# Replay lines: each line of the recorded events fixture.
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '%s\n' "$line" > "$c/replay_line/event-$n"
done < "$repo/tests/fixtures/engine/events.jsonl"

# Config: the packaged default config.
cp "$repo/packaging/vigil.yaml" "$c/config/packaging-vigil.yaml"

# Records: a 48-byte header of each kind (0..6) padded to 512 zero bytes;
# the decoder's unit tests show the layouts.
for k in 0 1 2 3 4 5 6; do
    { printf "\\$(printf '%03o' "$k")"; head -c 511 /dev/zero; } > "$c/decode/kind-$k"
done
echo "seeded: $(ls "$c"/* | wc -l) files under $c"
