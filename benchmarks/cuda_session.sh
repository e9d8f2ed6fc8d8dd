#!/usr/bin/env bash
# The CUDA checks and timings in one run, for a GPU machine that may be lent for a few minutes only.
#
#   bash benchmarks/cuda_session.sh OUT.json [cuda_bench.py options...]
#   python benchmarks/cuda_bench.py --from-json OUT.json --results      # later, anywhere: RESULTS.md
#
# Works from a plain checkout, without installing this project (a machine lent for minutes may have
# no package index): the package is assembled from runtime/, export/ and models/ as symlinks in a
# temporary folder. Needs python with torch, transformers, onnx and numpy. When the machine's
# onnxruntime has no CUDA provider, set ORT_GPU_WHEEL to an onnxruntime-gpu wheel: it is installed
# into the temporary folder (not over the machine's onnxruntime), and the CUDA libraries of the
# nvidia-* wheels next to torch are put on LD_LIBRARY_PATH. PYTHON picks the interpreter.
#
# cuda_bench.py exports the fp32, fp16 and fused fp16 graphs (each verified against PyTorch: the fp16
# ones on CUDA), then times them against PyTorch eager; see its docstring.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash benchmarks/cuda_session.sh OUT.json [cuda_bench.py options...]" >&2; exit 2; }
out=$1
shift
py=${PYTHON:-python3}
work=$(mktemp -d)

mkdir -p "$work/pkgs/longformer2vec"
cp -rs "$PWD/runtime/." "$work/pkgs/longformer2vec/"
ln -s "$PWD/export" "$work/pkgs/longformer2vec/export"
ln -s "$PWD/models" "$work/pkgs/longformer2vec/models"
export PYTHONPATH="$work/pkgs${PYTHONPATH:+:$PYTHONPATH}"

has_cuda='import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())'
if ! "$py" -c "$has_cuda" 2>/dev/null && [ -n "${ORT_GPU_WHEEL:-}" ]; then
    "$py" -m pip install -q --no-deps --target "$work/ort-gpu" "$ORT_GPU_WHEEL"
    export PYTHONPATH="$work/ort-gpu:$PYTHONPATH"
fi
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for lib in "$site"/nvidia/*/lib; do
    [ -d "$lib" ] && LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

"$py" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
"$py" benchmarks/cuda_bench.py --workdir "$work/bench" --json "$out" "$@"
