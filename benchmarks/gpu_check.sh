#!/usr/bin/env bash
# The GPU checks in one script, for a machine with a CUDA device and no internet. CHECKS picks them (default
# "graphs bench"; full was recorded on 2026-11-27, baseline and chapter on 2026-11-26):
#   graphs    benchmarks/graph_check.py: each arm pre-trained with its step as a CUDA graph and eagerly (weights
#             compared, images/s); if it fails, bench runs with MEDLIB_CUDA_GRAPHS=0,
#   bench     `python -m benchmarks.throughput` (issue 5: a, b, c images/s; a/b, a/c; medlib's step in bf16 and in float32
#             (bf16 gain); a and c as CUDA graphs and eagerly (graph gain); peak memory), blocks of 40 steps, batch
#             256 at 28 and 64 px, batch 1024 at 28 px,
#   full      the bench for the full profile's step: the small-input (cifar) stem, 64 px, batch 512,
#   baseline  the MedMNIST v2 ResNet-18 (28) baseline reproduction (benchmarks/medmnist_baseline.py),
#   chapter   chapter 2 (pre-training) under the full profile's training budget, restricted to the offline 28 px files.
# Usage: OUT=results_dir MEDLIB_DATA=folder_of_npz [CHECKS="bench baseline chapter"] bash benchmarks/gpu_check.sh
# Wheels missing on the machine may wait in .whl/ (installed into /tmp/site). Every step writes its log and
# results to $OUT as it goes, and a failing step does not stop the next one.
set -u
OUT=${OUT:?set OUT to a results folder}
export MEDLIB_OFFLINE=1 MEDLIB_RUNS=${MEDLIB_RUNS:-/tmp/medlib_runs} PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  export JUPYTER_PATH=/tmp/site/share/jupyter
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia_smi.csv"
python3 -c "import torch, torchvision, lightly, medmnist; print('torch', torch.__version__, 'torchvision',
torchvision.__version__, 'lightly', lightly.__version__, 'cuda', torch.cuda.get_device_name())" | tee "$OUT/versions.txt"

CHECKS=${CHECKS:-graphs bench}
has() { [[ " $CHECKS " == *" $1 "* ]]; }

if has graphs; then
  set -o pipefail
  timeout "${GRAPHS_SECONDS:-150}" python3 -m benchmarks.graph_check --out "$OUT/graph_check.json" 2>&1 \
    | tee "$OUT/graph_check.log" || export MEDLIB_CUDA_GRAPHS=0
  set +o pipefail
fi

bench() { timeout "${BENCH_SECONDS:-240}" python3 -m benchmarks.throughput --steps "${BENCH_STEPS:-40}" --repeats 5 \
  --workers 15 --out "$OUT/bench.jsonl" "$@"; }
if has bench; then
  { bench --sizes 28 64 --batch-size 256; bench --sizes 28 --batch-size 1024; } 2>&1 | tee "$OUT/bench.log"
fi

if has full; then
  bench --sizes 64 --batch-size 512 --stem cifar 2>&1 | tee "$OUT/bench_full.log"
fi

# the chapter and the baseline share the GPU (the chapter's images/s are then not a clean speed figure)
if has chapter; then
  timeout "${CHAPTER_SECONDS:-300}" python3 -m papermill notebooks/02_pretraining.ipynb "$OUT/02_pretraining_full.ipynb" \
    -p profile full -p size 28 -p targets '["breastmnist"]' \
    -p source_flags '["breastmnist", "pneumoniamnist", "retinamnist"]' --cwd "$PWD" > "$OUT/chapter.log" 2>&1 &
  chapter=$!
fi
if has baseline; then
  timeout "${BASELINE_SECONDS:-300}" python3 -m benchmarks.medmnist_baseline --flags breastmnist retinamnist pneumoniamnist \
    2>&1 | tee "$OUT/baseline.log"
  cp benchmarks/medmnist_baseline.md "$OUT/"
fi
if has chapter; then wait $chapter; echo "chapter exit $?" >> "$OUT/chapter.log"; fi
if [ -d "$MEDLIB_RUNS" ]; then tar czf "$OUT/runs.tar.gz" --exclude='*.pt' -C "$MEDLIB_RUNS" .; fi
