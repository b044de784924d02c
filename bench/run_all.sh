#!/bin/sh
# Regenerate every issue-6 figure in docs/benchmarks.md, back to back in one run.
# Usage: bench/run_all.sh EVAL_DIR [MEMORY_FILES]     (from the repository root; ~30 min + the memory run)
# Work files (copies of the eval images, results) go to /tmp/ocrd-bench, never into the repository;
# JSON summaries go to bench/out/ (git-ignored), charts to docs/img/.
set -eu
EVAL=${1:?usage: bench/run_all.sh EVAL_DIR [MEMORY_FILES]}
MEMFILES=${2:-2000}
PY=${PYTHON:-.venv/bin/python}
mkdir -p bench/out
log() { echo "== $(date -u +%H:%M:%S) $*"; }
log "machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true; uptime
log "peers";        $PY bench/peers.py --eval "$EVAL" --ocrd-variant 'no-cls={classify: {enabled: false}}'          | tee bench/out/peers.md
log "model floor";  $PY bench/model_floor.py --eval "$EVAL"     | tee bench/out/model_floor.md
log "scaling";      $PY bench/scaling.py --eval "$EVAL"         | tee bench/out/scaling.md
log "daemon path";  $PY bench/daemon_path.py --eval "$EVAL"     | tee bench/out/daemon_path.md
log "job log";      $PY bench/joblog_scale.py --importtime      | tee bench/out/joblog_scale.md
log "quantization probe"; $PY bench/quantize_probe.py --eval "$EVAL" --limit 10 | tee bench/out/quantize_probe.md
log "memory trend"; $PY bench/memory_trend.py --eval "$EVAL" --files "$MEMFILES" | tee bench/out/memory_trend.md
uptime
