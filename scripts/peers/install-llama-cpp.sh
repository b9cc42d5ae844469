#!/usr/bin/env bash
# The llama.cpp peer of `arena-lm-bench --peer llama.cpp`: llama-cpp-python built from its sdist
# (PyPI has no wheel) with GGML_NATIVE (this CPU's AVX-512/AMX kernels), in its own venv, with
# the gguf writer and safetensors. On 2 cores it took under 45 minutes at nice 19 beside a
# cold cargo build; pip keeps the built wheel. Never run by CI.
set -euo pipefail
venv="${1:-/opt/llamaenv}"
python3 -m venv "$venv"
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "$venv/bin/pip" install --quiet \
  llama-cpp-python==0.3.36 gguf numpy safetensors
"$venv/bin/python" -c 'import llama_cpp, gguf; print("llama-cpp-python", llama_cpp.__version__)'
echo "arena-lm-bench --peer llama.cpp --python $venv/bin/python"
