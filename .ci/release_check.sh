#!/usr/bin/env bash
# The release artefacts as users get them, outside the clone:
#   1. `python -m build`: the wheel and sdist; the wheel carries the model cards and the entry point.
#   2. The wheel installed (not editable) into a fresh venv in a temp folder, with its runtime
#      dependencies from the registry: `longformer2vec --help`, `info DIR`, `embed --model DIR TEXT`
#      run there, and the vector equals the one the editable install gives.
#   3. The GPU sibling wheel (packaging/gpu/build.py): named longformer2vec-gpu, depends on
#      onnxruntime-gpu and not on onnxruntime (built, not installed: no CUDA here).
#   4. `npm pack` of clients/node installed into a throwaway project: it encodes, and its vector
#      equals Python's.
# Run from the project's venv (python with the export extra). Usage: bash .ci/release_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$(command -v python)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { echo "release check: $* ($((SECONDS)) s)" >&2; }
TEXT="I enjoy taking long walks along the beach with my dog."

step "python -m build"
"$PY" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
wheel=$(ls "$work"/dist/longformer2vec-*.whl)
sdist=$(ls "$work"/dist/longformer2vec-*.tar.gz)
version=$("$PY" -c 'import re; print(re.search(r"^version = \"([^\"]+)\"", open("pyproject.toml").read(), re.M)[1])')
"$PY" - "$wheel" "$sdist" "$version" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist, version = sys.argv[1:]
names = set(zipfile.ZipFile(wheel).namelist())
need = ["longformer2vec/models/longformer-base-4096.md", "longformer2vec/models/longformer-large-4096.md",
        "longformer2vec/cli.py", "longformer2vec/serving/openapi.py", "longformer2vec/export/attention.py"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks {missing}"
entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
assert "longformer2vec = longformer2vec.cli:main" in zipfile.ZipFile(wheel).read(entry).decode(), "no console script"
assert f"longformer2vec-{version}-" in wheel, (wheel, version)
members = tarfile.open(sdist).getnames()
assert any(m.endswith("models/longformer-base-4096.md") for m in members), "sdist lacks the model cards"
print(f"wheel {wheel.rsplit('/', 1)[1]}: {len(names)} files, model cards and entry point present")
EOF

step "a small export with the editable install"
"$PY" -m longformer2vec.export.synthetic tiny "$work/hf" >/dev/null 2>&1
"$PY" -m longformer2vec export "$work/hf" --output "$work/model" --precision fp32 >/dev/null 2>"$work/export.log" \
    || { cat "$work/export.log" >&2; exit 1; }
(cd "$work" && "$PY" -m longformer2vec embed --model "$work/model" "$TEXT") >"$work/editable.json"

step "the wheel in a fresh venv outside the clone"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
(
    cd "$work"  # nothing of the clone on the path
    unset PYTHONPATH
    "$work/venv/bin/longformer2vec" --help >/dev/null
    "$work/venv/bin/longformer2vec" info "$work/model" >"$work/info.txt"
    grep -q "graphs:         fp32" "$work/info.txt"
    "$work/venv/bin/longformer2vec" embed --model "$work/model" "$TEXT" >"$work/wheel.json"
    # without the serve extra, serve names the packages to install (a wheel has no checkout for `pip -e`)
    if "$work/venv/bin/longformer2vec" serve --model "$work/model" 2>"$work/serve.txt"; then
        echo "serve ran without the serve extra" >&2
        exit 1
    fi
    grep -q "pip install 'fastapi" "$work/serve.txt" || { cat "$work/serve.txt" >&2; exit 1; }
    "$work/venv/bin/python" - "$ROOT" <<'EOF'
import sys
from pathlib import Path
import importlib.util
import longformer2vec
from longformer2vec.models import card_path
from longformer2vec import load_card
root = Path(sys.argv[1]).resolve()
where = Path(longformer2vec.__file__).resolve()
assert root not in where.parents, f"imported from the clone: {where}"
assert importlib.util.find_spec("torch") is None, "the wheel's runtime pulled in torch"
card = load_card(card_path("allenai/longformer-base-4096"))
print(f"installed {longformer2vec.__version__} at {where.parent}; packaged card {card.model_id}")
EOF
)
"$PY" - "$work/editable.json" "$work/wheel.json" <<'EOF'
import json, sys
import numpy as np
a, b = (np.array(json.load(open(p))) for p in sys.argv[1:])
diff = float(np.abs(a - b).max())
print(f"wheel vs editable embed: {a.shape}, max |diff| {diff:.2e}")
assert a.shape == b.shape and diff <= 1e-5, diff
EOF

step "the GPU sibling wheel"
"$PY" packaging/gpu/build.py --out "$work/gpu" >"$work/gpu.log" 2>&1 || { tail -40 "$work/gpu.log" >&2; exit 1; }
"$PY" - "$work/gpu" "$version" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel = next(Path(sys.argv[1]).glob("longformer2vec_gpu-*.whl"))
version = sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    names = z.namelist()
requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
base = [r for r in requires if "extra ==" not in r]
assert "Name: longformer2vec-gpu" in meta and f"Version: {version}" in meta, meta[:300]
assert any(r.startswith("onnxruntime-gpu") for r in base), base
assert not any(r.startswith("onnxruntime>") or r.startswith("onnxruntime ") for r in requires), requires
assert "longformer2vec/models/longformer-base-4096.md" in names
print(f"{wheel.name}: requires {', '.join(base)}")
EOF

step "npm pack of clients/node in a throwaway project"
mkdir -p "$work/npm" "$work/jsproject"
tarball=$(cd clients/node && npm pack --silent --pack-destination "$work/npm" | tail -1)
tar -tzf "$work/npm/$tarball" | grep -q "package/src/index.d.ts"
if tar -tzf "$work/npm/$tarball" | grep -q "package/test/"; then echo "the npm tarball ships its tests" >&2; exit 1; fi
npm_version=$(node -p "require('$ROOT/clients/node/package.json').version")
[ "$npm_version" = "$version" ] || { echo "npm version $npm_version != Python version $version" >&2; exit 1; }
(
    cd "$work/jsproject"
    npm init -y >/dev/null
    npm pkg set type=module >/dev/null
    ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error "$work/npm/$tarball" >/dev/null
    cat >encode.js <<'EOF'
import { Longformer2Vec } from "longformer2vec";
const model = await Longformer2Vec.load(process.argv[2], { precision: "fp32" });
console.log(JSON.stringify(Array.from(await model.encode(process.argv[3]))));
EOF
    node encode.js "$work/model" "$TEXT" >"$work/node.json"
)
"$PY" - "$work/editable.json" "$work/node.json" <<'EOF'
import json, sys
import numpy as np
a = np.array(json.load(open(sys.argv[1])))[0]
b = np.array(json.load(open(sys.argv[2])))
diff = float(np.abs(a - b).max())
print(f"npm tarball vs Python embed: {b.shape}, max |diff| {diff:.2e}")
assert a.shape == b.shape and diff <= 1e-4, diff
EOF
step "done"
