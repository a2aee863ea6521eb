#!/usr/bin/env bash
# Run the compiled test suite with node's test runner: the spec reporter on the
# terminal, a TAP copy to parse the totals, and a final 'N passed, N failed' line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .tools
tap=.tools/last-test-run.tap
status=0
node --test --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination="$tap" dist/ || status=$?
pass=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
skip=$(grep -E '^# skipped [0-9]+' "$tap" | tail -1 | awk '{print $3}')
echo "${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
if [[ "${pass:-0}" -eq 0 ]]; then echo "no test ran" >&2; exit 1; fi
exit "$status"
