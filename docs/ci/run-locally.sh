#!/usr/bin/env bash
# Run the `load-test` job of docs/ci/example-loadtest.yml by hand, against the
# local stack, with the workflow's own step scripts (read from the YAML, run as
# GitHub Actions runs them: bash -eo pipefail, the job's env, GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY files), so what runs here is what runs in CI.
#
#   docs/ci/run-locally.sh                 (DURATION=10s RAMP=2s by default here)
#   DURATION=30s RATE=50 docs/ci/run-locally.sh
#
# Sequence, each run on a fresh stack as in CI: stack up, one load test whose
# output becomes the baseline (in CI: the result.json of the last successful
# run on the default branch, found with `gh run list` and fetched with
# actions/download-artifact), stack down; stack up, a second load test, stack
# down (also on error or Ctrl-C); `arena loadtest compare` baseline vs new; the
# verdict step, whose exit code is this script's: 0 thresholds passed and no
# regression, 1 thresholds failed and/or a regression (it says which).
#
# Needs: arena built (npx tsc -p tsconfig.json) and the Debian packages
# (sudo scripts/install-debian-deps.sh db); not npm ci, not the upload/JUnit
# actions (the files they publish are listed at the end). Takes about a minute.
# Env: DURATION, RAMP, RATE, MAX_REGRESSION override the job's env;
# WORK=DIR keeps the outputs there (default: a new temporary folder, kept).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WF="$REPO/docs/ci/example-loadtest.yml"
export DURATION="${DURATION:-10s}" RAMP="${RAMP:-2s}"
export TARGET_URL="" # the local stack
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/arena-ci-local.XXXXXX")}"
mkdir -p "$WORK"

# The load-test job's step `run:` scripts (by id) and its plain env values.
wf() {
  # shellcheck disable=SC2016 # node code, not shell
  (cd "$REPO" && node -e '
    const { parse } = require("yaml");
    const job = parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs["load-test"];
    const [what, id] = process.argv.slice(2);
    if (what === "env") {
      for (const [k, v] of Object.entries(job.env)) if (!String(v).includes("${{")) console.log(`${k}=${v}`);
    } else {
      const step = job.steps.find((s) => s.id === id);
      if (!step?.run) { console.error(`run-locally: the load-test job has no step with id ${id} and a run script`); process.exit(2); }
      process.stdout.write(step.run);
    }' "$WF" "$@")
}

while IFS='=' read -r key value; do
  [ -n "${!key+set}" ] || export "$key=$value"
done < <(wf env)

# The checkout after the build step: the repository's dist/, samples/, docs/ and scripts/.
for d in dist samples docs scripts; do ln -sfn "$REPO/$d" "$WORK/$d"; done
: >"$WORK/summary.md"

# run_step ID: run the step's script in WORK; its outputs go to WORK/steps/ID.out.
run_step() {
  local id=$1
  mkdir -p "$WORK/steps"
  : >"$WORK/steps/$id.out"
  echo "==> step $id" >&2
  (cd "$WORK" && GITHUB_OUTPUT="$WORK/steps/$id.out" GITHUB_STEP_SUMMARY="$WORK/summary.md" \
    bash --noprofile --norc -eo pipefail -c "$(wf run "$id")")
}
output() { sed -n "s/^$2=//p" "$WORK/steps/$1.out" | tail -n 1; }

stack_is_up=0
take_down() {
  if [ "$stack_is_up" = 1 ]; then
    stack_is_up=0
    run_step stack-down || true
  fi
}
trap take_down EXIT
trap 'exit 130' INT TERM

echo "run-locally: rate $RATE/s, ramp $RAMP, steady $DURATION, outputs in $WORK" >&2

# 1. the baseline (in CI: the last successful run's result.json)
stack_is_up=1
run_step stack-up
run_step loadtest
take_down
base_exit=$(output loadtest exit)
rm -rf "$WORK/out/baseline"
mv "$WORK/out/loadtest" "$WORK/out/baseline"
mv "$WORK/out/loadtest.txt" "$WORK/out/baseline.txt"
echo "run-locally: baseline run done (arena loadtest run exit $base_exit)" >&2
[ "$base_exit" = 0 ] || echo "run-locally: note: in CI a run whose thresholds failed is never a baseline" >&2

# 2. the run under test, then the rest of the job
stack_is_up=1
run_step stack-up
run_step loadtest
take_down
run_step compare
export LOADTEST_EXIT COMPARE_EXIT
LOADTEST_EXIT=$(output loadtest exit)
COMPARE_EXIT=$(output compare exit)
verdict=0
run_step verdict || verdict=$?

echo "run-locally: arena loadtest run exit $LOADTEST_EXIT, arena loadtest compare exit $COMPARE_EXIT, verdict exit $verdict" >&2
echo "run-locally: the artifact: $WORK/out/loadtest/{report.html,junit.xml,result.json}; job summary: $WORK/summary.md" >&2
exit "$verdict"
