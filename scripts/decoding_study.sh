#!/usr/bin/env bash
# Word statistics and characters per step of one checkpoint under several decoding settings
# (the decoding tables in docs/training.md). Prints one markdown row per setting.
# Usage: scripts/decoding_study.sh CHECKPOINT [DATA]
set -euo pipefail
ckpt=${1:?usage: scripts/decoding_study.sh CHECKPOINT [DATA]}
data=${2:-assets/tinyshakespeare.txt}
bin=${BIN:-target/release/tiny-diffusion}

row() {
  local label=$1; shift
  "$bin" eval --checkpoint "$ckpt" --data "$data" --json "$@" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = d["generated"]
print("| %s | %.3f | %.3f | %.2f |" % (sys.argv[1], g["valid_word_rate"], g["distinct_bigram_rate"], d["characters_per_step"]))
' "$label"
}

echo "| decoding | valid-word rate | distinct bigrams | chars/step |"
echo "|---|---|---|---|"
row "confidence τ 0.7, T 1.0, span 8 (default)"
row "confidence τ 0.95, T 1.0, span 8" --threshold 0.95
row "confidence τ 0.5, T 1.0, span 8" --threshold 0.5
row "confidence τ 0.9, T 0.8, whole block" --threshold 0.9 --temperature 0.8 --span 0
row "top-k 2 per step, T 1.0, span 24" --strategy topk --per-step 2 --span 24
row "top-k 2 per step, T 0.9, span 32" --strategy topk --per-step 2 --span 32 --temperature 0.9
row "top-k 3 per step, T 1.0, span 24" --strategy topk --per-step 3 --span 24
