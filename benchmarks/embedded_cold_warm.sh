#!/usr/bin/env bash
# What `bench run` (the embedded benchmark) costs on a fresh clone: the first run (numba kernels not yet compiled,
# world not yet generated), a run with the world deleted (kernels compiled), and a run with everything cached.
# usage: benchmarks/embedded_cold_warm.sh   (wall and user CPU seconds of each, from /usr/bin/time)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export PYTHONPATH="$work/clone" MASKBENCH_CACHE="$work/cache"
timed() {
  /usr/bin/time -f "$1: wall %e s, user %U s" python -m maskbench run --out "$work/$2" > "$work/$2.log" 2>&1
  tail -1 "$work/$2.log"
}
timed "first run (kernels compiled, world generated)" out1
rm -rf "$work/cache"
timed "world deleted, kernels compiled" out2
timed "everything cached" out3
rm -rf "$work"
