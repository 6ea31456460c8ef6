#!/usr/bin/env bash
# Mutation testing of the pure rules: hall/domain/*.py and each feature package's pure rules
# (<feature>/rules.py or <feature>/domain/*.py, when they exist). A developer's check, not part
# of the test suite: it takes minutes per file. See docs/architecture.md ("Mutation testing").
#
#   bash scripts/mutation.sh                      # every file, one after the other
#   bash scripts/mutation.sh hall/domain/tickets.py
#   MUTATION_TESTS="tests/domain" bash scripts/mutation.sh hall/domain/estimate.py
#
# Each file's log (survivors with line and mutation) goes to $MUTATION_OUT (default
# .mutation/); the last lines printed are the score per file. Exit 1 when a file scores below
# $MUTATION_MIN (default 95). The runner is niced by $MUTATION_NICE (default 10) on top of the
# caller's niceness: on a shared machine run e.g. `MUTATION_NICE=0 nice -n 15 bash scripts/mutation.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
if [ ! -x "$py" ]; then
    echo "no .venv: run 'bash scripts/test.sh tests/domain -q' once first" >&2
    exit 2
fi
out=${MUTATION_OUT:-.mutation}
min=${MUTATION_MIN:-95}
niceness=${MUTATION_NICE:-10}
# The fast selection: pure tests only (no PostgreSQL, no server, no browser), without
# tests/conftest.py (which imports the whole app).
read -r -a tests <<<"${MUTATION_TESTS:-tests/domain}"

if [ "$#" -gt 0 ]; then
    files=("$@")
else
    files=()
    for f in hall/domain/*.py */rules.py */domain/*.py; do
        [ -f "$f" ] && [ "$(basename "$f")" != __init__.py ] && files+=("$f")
    done
    # hall/domain matched by both globs only once
    mapfile -t files < <(printf '%s\n' "${files[@]}" | awk '!seen[$0]++')
fi

mkdir -p "$out"
status=0
for f in "${files[@]}"; do
    log="$out/$(echo "$f" | tr / _ | sed 's/\.py$//').txt"
    nice -n "$niceness" "$py" scripts/mutation.py "$f" --json "${log%.txt}.json" --tests "${tests[@]}" \
        --pytest-args --noconftest >"$log" 2>&1 || { echo "$f: runner failed, see $log"; status=2; continue; }
    score=$(grep '^SCORE' "$log" | tail -1)
    echo "$score"
    pct=$(echo "$score" | sed -E 's/.*: ([0-9.]+)%.*/\1/')
    if awk -v p="$pct" -v m="$min" 'BEGIN { exit !(p < m) }'; then
        status=$(( status > 1 ? status : 1 ))
    fi
done
exit "$status"
