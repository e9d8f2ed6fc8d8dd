#!/usr/bin/env bash
# The runtime's promise (onnxruntime, numpy and tokenizers; never torch or transformers), checked where it
# matters: the runtime's tests run in a second environment that has the runtime, its serve and corpus
# extras and the test tools, and no torch. The tiny exports they need are built first, with torch, by the
# main environment (its python is $1), and handed over through LONGFORMER2VEC_TEST_EXPORTS.
# onnx is there for the tests' stub graphs only (tests/helpers_runtime.py builds them with it).
set -euo pipefail
cd "$(dirname "$0")/.."
main_python=${1:?usage: .ci/runtime_tests.sh MAIN_ENV_PYTHON}

exports=$(mktemp -d)
trap 'rm -rf "$exports"' EXIT
"$main_python" -m tests.helpers_exports "$exports"

python3 -m venv .venv-runtime
runtime_python=.venv-runtime/bin/python
"$runtime_python" -m pip install -q --upgrade pip
"$runtime_python" -m pip install -q --no-cache-dir -e ".[serve,corpus]" pytest httpx openai onnx
if "$runtime_python" -c "import torch" 2>/dev/null || "$runtime_python" -c "import transformers" 2>/dev/null; then
    echo "error: torch or transformers is importable in the runtime-only environment" >&2
    exit 1
fi
echo "runtime-only environment: no torch, no transformers"

# the runtime's areas; the exporter's (tests/export) and the other tools' (tests/clients) need torch.
runtime_tests=(tests/runtime tests/serving tests/corpus)
LONGFORMER2VEC_RUNTIME_ONLY=1 LONGFORMER2VEC_TEST_EXPORTS="$exports" \
    "$runtime_python" -m pytest -q -p no:cacheprovider "${runtime_tests[@]}"
