#!/usr/bin/env bash
# On the GPU machine: run tools/gpu_bench.py against TVM's runtime-only bundle.
# Usage: tools/gpu_bench.sh BUNDLE_DIR [--out DIR]
#   BUNDLE_DIR: made by ../shared/gpu/make-tvm-runtime-bundle.sh (site/ + wheels/)
# Build the artifacts first, on a machine with the full TVM: python tools/gpu_bench.py build
set -euo pipefail
bundle=${1:?usage: gpu_bench.sh BUNDLE_DIR [--out DIR]}; shift
here=$(cd "$(dirname "$0")" && pwd)
site=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --target "$site" "$bundle"/wheels/*.whl
PYTHONPATH="$site:$bundle/site" TVM_USE_RUNTIME_LIB=1 python3 "$here/gpu_bench.py" run "$@"
