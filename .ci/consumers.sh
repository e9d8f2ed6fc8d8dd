#!/usr/bin/env bash
# Environments of the tools that tests/clients/test_consumers.py loads an exported directory with. Their pins
# conflict with the project's (optimum-onnx needs transformers < 4.58; the project's export extra takes
# transformers 5), so each gets its own, gitignored, inside the repository:
#   .venv-st                  sentence-transformers' ONNX backend and optimum (one resolver: ST's onnx extra)
#   .venv-fastembed           fastembed
#   tests/consumers/js        transformers.js (npm ci from the committed package-lock.json)
#   tests/consumers/web       onnxruntime-web, for the document graphs' wasm test (tests/export/test_document_graph.py)
# Then prints the variables the tests read. Usage: bash .ci/consumers.sh  (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

# sentence-transformers 6 needs transformers >= 5, which optimum-onnx 0.1.0 (its ONNX backend) refuses:
# 5.7.0 is the newest release whose onnx extra installs. torch is pinned first in the same command: the
# CPU wheel on disk; an unpinned torch pulls a multi-GB CUDA build.
ST_PINS=("torch==2.13.0" "sentence-transformers[onnx]==5.7.0" "optimum-onnx[onnxruntime]==0.1.0" "transformers==4.57.6")
FASTEMBED_PINS=("fastembed==0.9.1")

logs=$(mktemp -d)
build_venv() {  # build_venv DIR PACKAGE...
    local dir=$1
    shift
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --no-cache-dir "$@"
}
build_js() {
    command -v node >/dev/null || { echo "node is not installed" >&2; return 1; }
    # onnxruntime-node ships its CPU binaries; its install script would download CUDA ones.
    (cd tests/consumers/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
    (cd tests/consumers/web && npm ci --no-audit --no-fund --loglevel=error)
}

# The three installs are mostly download and unpacking: run side by side, each logged on its own.
start=$SECONDS
build_venv .venv-st "${ST_PINS[@]}" >"$logs/st.log" 2>&1 &
st_pid=$!
build_venv .venv-fastembed "${FASTEMBED_PINS[@]}" >"$logs/fastembed.log" 2>&1 &
fe_pid=$!
build_js >"$logs/js.log" 2>&1 &
js_pid=$!

failed=0
for job in "st:$st_pid" "fastembed:$fe_pid" "js:$js_pid"; do
    name=${job%%:*}
    if ! wait "${job#*:}"; then
        echo "consumer environment '$name' failed to build:" >&2
        grep -v "is ignored: it is neither a file nor a directory" "$logs/$name.log" | tail -40 >&2
        failed=1
    fi
done
rm -rf "$logs"
[ "$failed" = 0 ] || exit 1
echo "consumer environments built in $((SECONDS - start)) s" >&2
.venv-st/bin/python -m pip list 2>/dev/null | grep -iE "^(sentence-transformers|optimum|optimum-onnx|transformers|onnxruntime|torch) " >&2 || true
.venv-fastembed/bin/python -m pip list 2>/dev/null | grep -iE "^(fastembed|onnxruntime) " >&2 || true
echo "@huggingface/transformers $(node -p 'require("./tests/consumers/js/node_modules/@huggingface/transformers/package.json").version')" >&2
echo "onnxruntime-web $(node -p 'require("./tests/consumers/web/node_modules/onnxruntime-web/package.json").version')" >&2

echo "export LONGFORMER2VEC_ST_PYTHON=$PWD/.venv-st/bin/python"
echo "export LONGFORMER2VEC_FASTEMBED_PYTHON=$PWD/.venv-fastembed/bin/python"
echo "export LONGFORMER2VEC_NODE_CONSUMER_DIR=$PWD/tests/consumers/js"
