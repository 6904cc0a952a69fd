#!/usr/bin/env bash
# The GPU study in one script (issues 16 and 19), for a machine with a CUDA device and no internet:
#   0. wheels from .whl/ (installed into /tmp/site); the archive of earlier runs (ARCHIVE_IN, default
#      archives/$PROFILE) imported into the run store, so a run that stopped midway is continued, not redone,
#   a. the budget curve (benchmarks/budget_curve.py) on BreastMNIST's pool: budgets of CURVE_EVERY up to
#      CURVE_EPOCHS epochs; its runs at the profile's budget are the profile's own, so compute reuses them,
#   a2. the pre-training rate of each arm (benchmarks/pretrain_lr.py) on the same pool: each method's own rate
#      times each of LR_SCALES (empty: skipped); its x1 runs are the profile's own,
#   a3. SimCLR's temperature and BYOL's momentum (benchmarks/pretrain_options.py) on the same pool, at the rates
#      a2 chose: OPTION_SWEEPS, "option:values" pairs separated by ";" (empty: skipped),
#   b. issue 19's speed-up: `compute --only $SPEEDUP_ONLY` from an empty store with N jobs for each N in
#      SPEEDUP_JOBS, side by side (the last N's runs are kept), then `compute --profile $PROFILE --jobs $JOBS`
#      chapter by chapter, one timing line each (timings.tsv),
#   c. after every chapter, `archive export` of every chapter into $OUT/archive (at most 8 files of 16 MiB), so
#      that whatever stops the run leaves the archive of what was stored by then.
# Everything runs under one deadline (STUDY_SECONDS from the start) and leaves what it has under $OUT.
# Usage on the GPU: OUT=results MEDLIB_DATA=.gpu_data bash benchmarks/gpu_study.sh
# On a CPU, end to end at a tiny budget: MEDLIB_STUDY_PROFILE=smoke CURVE_EPOCHS=2 CURVE_EVERY=1 CURVE_ARMS=tl \
#   LR_SCALES="1 2" LR_ARMS=tl OPTION_SWEEPS="temperature:0.2 0.5" OPTION_ARMS=ssl-simclr \
#   SPEEDUP_ONLY=02_pretraining SPEEDUP_JOBS="1 2" JOBS=2 CHAPTERS=03_head_to_head OUT=/tmp/out \
#   MEDLIB_DATA=... bash benchmarks/gpu_study.sh
set -u
OUT=${OUT:?set OUT to a results folder}
PROFILE=${MEDLIB_STUDY_PROFILE:-gpu}
ARCHIVE_IN=${ARCHIVE_IN:-archives/$PROFILE}
JOBS=${JOBS:-8}
SPEEDUP_JOBS=${SPEEDUP_JOBS-1 4 8}
SPEEDUP_ONLY=${SPEEDUP_ONLY:-08_explainability}
CHAPTERS=${CHAPTERS:-02_pretraining 03_head_to_head 09_speed 04_scarcity 05_imbalance 06_domain 07_robustness \
08_explainability 10_summary}
deadline=$(( $(date +%s) + ${STUDY_SECONDS:-540} ))
left() { echo $(( deadline - $(date +%s) )); }
budget() { local s; s=$(left); echo $(( s < ${1:-$s} ? (s > 1 ? s : 1) : ${1:-$s} )); }  # seconds for timeout
export MEDLIB_OFFLINE=1 MEDLIB_RUNS=${MEDLIB_RUNS:-/tmp/medlib_runs} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$MEDLIB_RUNS"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
medlib() { python3 -m medlib "$@"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"; } \
  > "$OUT/device.txt"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no .git here: name it in the commit message)")
echo "commit $commit" >> "$OUT/device.txt"
python3 -c "import torch, submitit, lightly, medmnist; from medlib.compute import precision; print('torch',
torch.__version__, 'cuda', torch.cuda.is_available(), 'precision', precision())" | tee -a "$OUT/device.txt"

if [ -f "$ARCHIVE_IN/manifest.json" ]; then
  medlib archive import "$ARCHIVE_IN" 2>&1 | tee "$OUT/import.log"
fi
export_archive() { medlib archive export --profile "$PROFILE" "$OUT/archive" >> "$OUT/export.log" 2>&1; }

if [ "${CURVE_EPOCHS:-100}" -gt 0 ] && [ "$(left)" -gt 0 ]; then
  timeout -k 10 "$(budget "${CURVE_SECONDS:-150}")" python3 -m benchmarks.budget_curve --profile "$PROFILE" \
    --epochs "${CURVE_EPOCHS:-100}" --every "${CURVE_EVERY:-50}" ${CURVE_ARMS:+--arms $CURVE_ARMS} \
    --out "$OUT/curve" 2>&1 | tee "$OUT/curve.log"
fi

LR_SCALES=${LR_SCALES-0.5 1 2}
if [ -n "$LR_SCALES" ] && [ "$(left)" -gt 0 ]; then
  timeout -k 10 "$(budget "${LR_SECONDS:-150}")" python3 -m benchmarks.pretrain_lr --profile "$PROFILE" \
    --scales $LR_SCALES ${LR_ARMS:+--arms $LR_ARMS} --out "$OUT/pretrain_lr" 2>&1 | tee "$OUT/pretrain_lr.log"
fi

OPTION_SWEEPS=${OPTION_SWEEPS-temperature:0.1 0.2 0.5;momentum:0.98 0.99 0.996}
lrs=$(sed -n 's/^chosen pretrain_lrs: \({.*}\) (probe.*$/\1/p' "$OUT/pretrain_lr.log" 2>/dev/null)
IFS=';' read -ra sweeps <<< "$OPTION_SWEEPS"
for sweep in "${sweeps[@]}"; do
  [ "$(left)" -gt 0 ] || break
  option=${sweep%%:*}
  timeout -k 10 "$(budget "${OPTION_SECONDS:-90}")" python3 -m benchmarks.pretrain_options --profile "$PROFILE" \
    --option "$option" --values ${sweep#*:} ${lrs:+--pretrain-lrs "$lrs"} ${OPTION_ARMS:+--arms $OPTION_ARMS} \
    --out "$OUT/pretrain_$option" 2>&1 | tee "$OUT/pretrain_$option.log"
done

printf "what\tjobs\tseconds\texit\tsummary\n" > "$OUT/timings.tsv"
timed() {  # timed WHAT N STORE: compute WHAT with N jobs into STORE before the deadline; one line in timings.tsv
  local start=$(date +%s) code
  MEDLIB_RUNS=$3 timeout -k 10 "$(budget)" python3 -m medlib compute --profile "$PROFILE" --only $1 --executor local \
    --jobs "$2" > "$OUT/compute_${1// /+}_$2.log" 2>&1
  code=$?
  printf "%s\t%s\t%s\t%s\t%s\n" "$1" "$2" "$(( $(date +%s) - start ))" "$code" \
    "$(tail -n 1 "$OUT/compute_${1// /+}_$2.log")" | tee -a "$OUT/timings.tsv"
}
for n in $SPEEDUP_JOBS; do
  [ "$(left)" -gt 0 ] || break
  store=/tmp/medlib_speedup_$n
  rm -rf "$store"
  timed "$SPEEDUP_ONLY" "$n" "$store"
  last=$store
done
if [ -n "${last:-}" ]; then  # the last N's complete runs join the run store (result.json marks a complete run)
  for run in "$last"/*/*/result.json; do
    [ -e "$run" ] || continue
    dir=$(dirname "$run"); kind=$(basename "$(dirname "$dir")")
    [ -e "$MEDLIB_RUNS/$kind/$(basename "$dir")" ] || { mkdir -p "$MEDLIB_RUNS/$kind"
                                                         cp -r "$dir" "$MEDLIB_RUNS/$kind/"; }
  done
fi
for chapter in $CHAPTERS; do
  [ "$(left)" -gt 0 ] || { echo "deadline reached before $chapter" | tee -a "$OUT/timings.tsv"; break; }
  timed "$chapter" "$JOBS" "$MEDLIB_RUNS"
  export_archive
done
export_archive
tail -n 3 "$OUT/export.log"
