#!/usr/bin/env bash
# What a GPU machine runs for issue 18, from the repository root, writing under $OUT:
#
#   1. gpu.txt           nvidia-smi and the Python stack seen
#   2. gpu_smoke.json/md the GPU smoke run (scripts/gpu_smoke.py): the three tutorials'
#                        analyses on cuda, a 1B-class random-weight Llama's head sweep and
#                        top-k through the nnsight backend, CUDA peak memory per step
#   3. ndif_remote.txt   an NDIF server on this machine's GPU (scripts/ndif_local.sh with
#                        NDIF_LOCAL_GPU=1: no CPU patches) and the remote parity tests
#                        (tests/models/test_ndif_local.py) against it; or why not run
#   4. summary.md        the lines to paste into docs/benchmarks.md and docs/scale.md
#
# Nothing is fetched. Python packages the machine lacks travel as wheels in .whl/ (see the
# device notes: pip download --python-version 3.12 ... -d .whl NAME==VERSION); explorer
# needs nnsight and transformer-lens with their dependencies; the server needs ndif, ray
# (its wheel is about 78 MB, over one call's 64 MiB: bring it in two halves with `split`
# and `cat` them here into .whl/), moto, and Debian's redis-server (.deb files in .debs/).
# Each part that cannot run is recorded as not run, with the reason; the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
if ls .debs/*.deb >/dev/null 2>&1; then
    for f in .debs/*.deb; do dpkg -x "$f" /tmp/debs; done
    export PATH="/tmp/debs/usr/bin:$PATH" LD_LIBRARY_PATH="/tmp/debs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())'
    for pkg in nnsight transformer_lens transformers ndif ray; do
        python3 -c "import importlib.metadata as m; print('$pkg', m.version('$pkg'.replace('_', '-')))" 2>/dev/null \
            || echo "$pkg missing"
    done
} > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

python3 scripts/gpu_smoke.py "$OUT" > "$OUT/gpu_smoke.log" 2>&1 || echo "gpu_smoke.py failed: see gpu_smoke.log" >> "$OUT/gpu.txt"

remote="$OUT/ndif_remote.txt"
if ! python3 -c "import ndif, ray, moto" 2>/dev/null; then
    echo "not run: ndif, ray or moto is not importable on this machine (bring them as wheels)" > "$remote"
elif ! command -v redis-server >/dev/null; then
    echo "not run: no redis-server (bring Debian's redis-server .deb files in .debs/)" > "$remote"
else
    export NDIF_VENV=system NDIF_LOCAL_GPU=1 NDIF_DEFAULT_DTYPE=float32
    start=$(date +%s)
    python3 -m pytest -q -p no:cacheprovider -p no:randomly tests/models/test_ndif_local.py -ra \
        > "$remote" 2>&1
    echo "exit $? after $(( $(date +%s) - start )) s (server start included)" >> "$remote"
fi

{
    echo "## GPU run, $(head -1 "$OUT/gpu.txt")"
    echo
    sed -n 2,3p "$OUT/gpu.txt"
    echo
    [ -f "$OUT/gpu_smoke.md" ] && cat "$OUT/gpu_smoke.md"
    echo
    echo "Remote parity against ndif on this GPU: $(tail -2 "$remote" | tr '\n' ' ')"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
