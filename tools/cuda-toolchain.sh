#!/usr/bin/env bash
# Builds a CUDA 13.0 toolchain directory from PyPI wheels, for compiling arena's `cuda` feature
# on a machine without the CUDA toolkit (or without a GPU):
#   tools/cuda-toolchain.sh [/opt/cuda13]
#   export CUDA_HOME=/opt/cuda13 PATH=/opt/cuda13/bin:$PATH LIBRARY_PATH=/opt/cuda13/lib64 CUDA_COMPUTE_CAP=90
#   cargo build --release -p arena-perplexity --features cuda
# nvcc, headers, cudart, cuBLAS and cuRAND come from NVIDIA's wheels (nvcc pinned to 13.0.x to
# match the GPU machines' driver). The driver library itself (libcuda.so.1) comes with the
# driver; for linking without one, a stub libcuda.so exporting the driver API's symbols is
# generated from cuda.h (as the toolkit's own stubs/libcuda.so does): at run time the driver's
# real library is loaded instead.
set -euo pipefail
dest="${1:-/opt/cuda13}"
venv="$dest/.wheels"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
  "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cublas==13.0.*" "nvidia-curand==10.*"
n=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
mkdir -p "$dest/lib64"
for d in bin include nvvm; do ln -sfn "$n/$d" "$dest/$d"; done
for l in cudart cublas cublasLt curand nvrtc; do
  f=$(ls "$n"/lib/lib$l.so.* | head -n 1)
  ln -sf "$f" "$dest/lib64/lib$l.so"
  ln -sf "$f" "$dest/lib64/$(basename "$f")"
done
stub=$(mktemp --suffix .c)
{
  echo '/* Link-time stub of the CUDA driver API; the driver provides the real libcuda.so.1. */'
  gcc -E -P -I "$n/include" "$n/include/cuda.h" | grep -oE '\bcu[A-Z][A-Za-z0-9_]*\s*\(' | sed 's/\s*($//' | sort -u |
    while read -r s; do echo "int $s(void) { return 999; }"; done
} > "$stub"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dest/lib64/libcuda.so" "$stub"
rm -f "$stub"
"$dest/bin/nvcc" --version | tail -n 2
echo "CUDA toolchain in $dest"
