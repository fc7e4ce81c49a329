#!/usr/bin/env bash
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# make test's runner: every step a make target, timed.
#
#   tools/test-steps.sh RESULTS "PREREQUISITES" "STEPS" "PARALLEL LANES"
#
# The prerequisites run first (a failure there stops). Then each step, one after the other,
# every one even when an earlier one failed. Then the lanes at the same time, one lane being
# targets joined by + (make -k a b c), each lane's output in RESULTS/<lane>.log, printed when
# all are done. Last the step times, the failed steps and the pytest total (make summary).
# Exit status 1 when a step or lane failed.
set -uo pipefail

results=${1:?usage: test-steps.sh RESULTS PREREQUISITES STEPS LANES}
prerequisites=${2:-}
steps=${3:-}
lanes=${4:-}
make=${MAKE:-make}
mkdir -p "$results"

t0=$(date +%s)
# shellcheck disable=SC2086  # word splitting: the targets
$make $prerequisites || exit 1
echo "test: prerequisites took $(( $(date +%s) - t0 )) s"
rm -f "$results"/{unit,integration,sip,attack,media}.xml

failed=""
times=""
for step in $steps; do
  echo "==> make $step"
  s0=$(date +%s)
  $make "$step" || failed="$failed $step"
  times="$times $step=$(( $(date +%s) - s0 ))s"
done

if [ -n "$lanes" ]; then
  echo "==> make $lanes, in parallel (output below when all are done)"
  t0=$(date +%s)
  pids=""
  for lane in $lanes; do
    rm -f "$results/$lane.rc"
    {
      s0=$(date +%s)
      rc=0
      # shellcheck disable=SC2046  # word splitting: the lane's targets
      $make -k $(echo "$lane" | tr + ' ') >"$results/$lane.log" 2>&1 || rc=$?
      echo "$rc $(( $(date +%s) - s0 ))" >"$results/$lane.rc"
    } &
    pids="$pids $!"
  done
  # shellcheck disable=SC2086
  wait $pids || true
  for lane in $lanes; do
    rc=1
    secs=0
    if [ -f "$results/$lane.rc" ]; then read -r rc secs <"$results/$lane.rc"; fi
    echo "==> make $lane (exit $rc after $secs s, log $results/$lane.log)"
    cat "$results/$lane.log"
    [ "$rc" = 0 ] || failed="$failed $lane"
    times="$times $lane=${secs}s"
  done
  times="$times ($lanes together $(( $(date +%s) - t0 ))s)"
fi

echo "test: step times:$times"
[ -z "$failed" ] || echo "test: FAILED:$failed"
$make summary || true
[ -z "$failed" ]
