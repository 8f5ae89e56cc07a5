#!/usr/bin/env bash
# Runs fuzz targets one at a time, each for SECS seconds, and prints a table of the runs.
#
#   fuzz/run.sh [SECS] [TARGET...]      SECS defaults to 600; no TARGET = every target
#
# Needs nightly and cargo-fuzz (`cargo +nightly fuzz`). Each target reads its seeds in
# fuzz/corpus/<target>/ (left as they are) and keeps what it finds in fuzz/work/<target>/;
# crash artifacts go to fuzz/artifacts/<target>/ and logs to fuzz/work/logs/ (all ignored by
# git). A crash stops that target's run (libFuzzer's way) and the script goes on with the next;
# it exits 1 if any target crashed. To fold a run's finds into the seeds (cmin keeps coverage,
# not history: the crash-* seeds, inputs that once crashed, go back in from git):
#
#   cp fuzz/work/<target>/* fuzz/corpus/<target>/
#   cargo +nightly fuzz cmin <target> -- -use_counters=0
#   git checkout fuzz/corpus/<target>/crash-*
#
# Every run is bounded: libFuzzer's -max_total_time, and `timeout` around it for a run that
# hangs (a slow input stops at -timeout seconds, an artifact too).
set -euo pipefail

secs=${1:-600}
[[ $secs =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECS] [TARGET...]" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
cd "$(dirname "$0")/.."

targets=("$@")
if (( ${#targets[@]} == 0 )); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build >&2

mkdir -p fuzz/work/logs
rows=()
failed=0
for target in "${targets[@]}"; do
    work=fuzz/work/$target
    artifacts=fuzz/artifacts/$target
    log=fuzz/work/logs/$target.log
    mkdir -p "$work" "$artifacts" "fuzz/corpus/$target"
    # Crashes, timeouts (-timeout), leaks and out-of-memory units; libFuzzer's slow-unit-*
    # files (an input slower than any before it, e.g. while the machine was busy or the fuzzer
    # stopped) are kept too but are not failures.
    failures() { find "$artifacts" -type f ! -name 'slow-unit-*' | wc -l; }
    before=$(failures)
    start=$(date +%s)
    rc=0
    timeout --kill-after=30 $(( secs + 120 )) \
        cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || rc=$?
    took=$(( $(date +%s) - start ))
    # libFuzzer's final stats; a run cut short has only its status lines ("#1234 ...").
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    if [[ -z $execs ]]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    fi
    crashes=$(( $(failures) - before ))
    if (( crashes > 0 || (rc != 0 && rc != 124) )); then
        failed=1
        (( crashes > 0 )) || crashes="exit $rc"
    fi
    rows+=("$(printf '%-18s %7s %13s %8s' "$target" "$took" "${execs:-?}" "$crashes")")
    echo "${rows[-1]}" >&2
done

printf '%-18s %7s %13s %8s\n' target seconds executions crashes
printf '%s\n' "${rows[@]}"
(( failed == 0 )) || { echo "crashes kept in fuzz/artifacts/, logs in fuzz/work/logs/" >&2; exit 1; }
