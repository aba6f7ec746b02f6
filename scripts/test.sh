#!/usr/bin/env bash
# Installs missing dependencies, configures, builds on all cores and runs every test.
# Usage: scripts/test.sh [extra cmake arguments]   (BUILD_DIR overrides the build folder)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
serpent_install_deps

# The layering (docs/ARCHITECTURE.md): no include cycle between folders, no include against the
# allowed direction, no folder over 30% of the code, no hand-written file over 800 lines.
python3 scripts/check_layers.py

BUILD_DIR=${BUILD_DIR:-build}
JOBS=$(nproc)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then generator=(); fi
# SERPENT_TESTS=ON explicitly: scripts/quickstart.sh configures the same folder without the tests.
cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSERPENT_TESTS=ON "$@"
cmake --build "$BUILD_DIR" -j "$JOBS"
cd "$BUILD_DIR"
ctest --output-on-failure -j "$JOBS" --timeout 900
