#!/bin/sh
# build.sh - configures and builds into build/ (CUDA parts too when nvcc exists).
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build build -j "$(nproc)"
