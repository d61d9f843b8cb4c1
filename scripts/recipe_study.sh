#!/usr/bin/env bash
# Short training runs for the recipe study in docs/training.md.
# Each run trains from scratch for the same number of characters, then `eval` measures it.
# Usage: scripts/recipe_study.sh OUT_DIR [STEPS]   (runs in the foreground; ~1 h on 2 cores)
set -euo pipefail
out=${1:?usage: scripts/recipe_study.sh OUT_DIR [STEPS]}
steps=${2:-600}
data=${DATA:-assets/tinyshakespeare.txt}
bin=${BIN:-target/release/tiny-diffusion}
mkdir -p "$out"

run() {
  local name=$1 steps=$2; shift 2
  [ -f "$out/$name.eval.json" ] && { echo "skip $name (done)"; return; }
  echo "== $name: $*"
  local start=$(date +%s)
  /usr/bin/time -f '%U %S %e' -o "$out/$name.time" \
    "$bin" train --data "$data" --steps "$steps" --eval-every 200 --sample-every 0 --save-every 0 \
      --out "$out/$name" "$@" > "$out/$name.log" 2>&1
  "$bin" eval --checkpoint "$out/$name" --data "$data" --json > "$out/$name.eval.json" 2>> "$out/$name.log"
  echo "   done in $(( $(date +%s) - start )) s: $(cat "$out/$name.time")"
}

run base         $steps --preset small
run uniform      $steps --preset small --mask-schedule uniform
run reference    $steps --preset small --mask-schedule uniform --lr 3e-4 --min-lr-ratio 1 --warmup 0
run lr2e-3       $steps --preset small --lr 2e-3
run ctx128       $steps --preset small --seq-len 128 --batch 16
run deep-narrow  $steps --preset small --layers 6 --width 192 --heads 3
run timestep     $steps --preset small --timesteps 128
run batch16      $((steps / 2)) --preset small --batch 16 --lr 1.4e-3
