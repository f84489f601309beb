#!/usr/bin/env bash
# The prepared GPU check: every notebook at the gpu-check profile, then benchmarks/data_path.py on CUDA,
# one summary in $OUT/SUMMARY.md. Exits 2 on a machine without a CUDA device, 1 when a check fails.
set -u -o pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/gpu-check}

"$PY" -c '
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"gpu-check: no CUDA device: PyTorch {torch.__version__} sees no GPU on this machine "
             "(run `make doctor` to see why)")
print(f"gpu-check on {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}", flush=True)
' || exit 2

rm -rf "$OUT" && mkdir -p "$OUT"
start=$(date +%s)
"$PY" -m course_utils.tools.runner --profile gpu-check --out "$OUT/notebooks"
notebooks=$?
"$PY" benchmarks/data_path.py --device cuda --repeats 3 2>&1 | tee "$OUT/benchmark.txt"
benchmark=$?
{
    cat "$OUT/notebooks/summary.md" 2>/dev/null || echo "(the runner wrote no summary: exit $notebooks)"
    printf '\n## benchmarks/data_path.py --device cuda --repeats 3 (exit %s)\n\n```\n' "$benchmark"
    cat "$OUT/benchmark.txt"
    printf '```\n\ngpu-check: notebooks exit %s, benchmark exit %s, %s s in all\n' \
        "$notebooks" "$benchmark" "$(( $(date +%s) - start ))"
} > "$OUT/SUMMARY.md"
echo "summary: $OUT/SUMMARY.md"
[ "$notebooks" -eq 0 ] && [ "$benchmark" -eq 0 ]
