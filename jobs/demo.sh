#!/usr/bin/env bash
# The main job on the embedded default dataset, from a fresh Debian 12 machine (as root):
# installs what is missing, builds, turns Fashion-MNIST (Debian package dataset-fashion-mnist)
# into shards with a class-balanced labeled subset, trains MetaSemi (with mix-up) and the
# labeled-only baseline with the same model, steps and seed on 2 MPI ranks, and writes the
# result table, the training curves and the t-SNE figure of the MetaSemi run.
#
# Environment: DEMO_CONFIG (default jobs/configs/fashion-mnist-demo.cfg), DEMO_OUT (default
# demo-output/), DEMO_RANKS (default 2), DEMO_TSNE_POINTS (t-SNE sample, default 6000; 0 = skip),
# DEMO_BUILD=0 to use the programs already in build/bin without installing or building.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="$(realpath "${DEMO_CONFIG:-$root/jobs/configs/fashion-mnist-demo.cfg}")"
out="$(realpath -m "${DEMO_OUT:-$root/demo-output}")"
ranks="${DEMO_RANKS:-2}"
tsne_points="${DEMO_TSNE_POINTS:-6000}"
bin="$root/build/bin"
start=$(date +%s)
stage=0
stages=7
step() {  # what the demo does now, with how far it is
  stage=$((stage + 1))
  local t=$(($(date +%s) - start))
  printf '== [%d/%d %02d:%02d] %s\n' "$stage" "$stages" $((t / 60)) $((t % 60)) "$*"
}
[ "$tsne_points" = 0 ] && stages=$((stages - 1))

if [ "${DEMO_BUILD:-1}" != 0 ]; then
  step "packages (env/setup.sh) and the demo's programs (env/build.sh; the tests build the rest)"
  "$root/env/setup.sh"
  METASEMI_BUILD_TARGETS="metasemi-prep metasemi-train metasemi-eval metasemi-report \
metasemi-features metasemi-tsne" "$root/env/build.sh" default
else
  stages=$((stages - 1))
fi
source "$root/env/mpi-env.sh"

# The settings the runs will use, as metasemi-train resolves them.
resolved="$("$bin/metasemi-train" --config "$config" --dry-run)"
setting() { awk -F' = ' -v k="$1" '$1 == k {print $2}' <<< "$resolved"; }
num_label="$(setting num-label)"
seed="$(setting seed)"

step "shards: Fashion-MNIST -> $out/data"
if [ ! -f "$out/data/train.h5" ] || [ ! -f "$out/data/test.h5" ]; then
  "$bin/metasemi-prep" idx --input /usr/share/datasets/fashion-mnist --dataset fashion-mnist \
    --out "$out/data"
fi
if [ ! -f "$out/data/splits/labels-$num_label-seed$seed.h5" ]; then
  "$bin/metasemi-prep" split --set "$out/data" --num-labels "$num_label" --seed "$seed"
fi

train() {  # name, extra flags
  local name="$1"
  shift
  step "training: $name"
  mpirun -np "$ranks" "$bin/metasemi-train" --config "$config" --data-path "$out/data" \
    --save-path "$out/runs/$name" "$@"
}
train metasemi --method meta --mix-up
train baseline --method baseline

step "evaluation: error rates of the best checkpoints (per class, confusion matrix)"
for name in metasemi baseline; do
  mpirun -np "$ranks" "$bin/metasemi-eval" --checkpoint "$out/runs/$name/model_best.h5" \
    --data-path "$out/data" --threads 1 --output "$out/runs/$name/eval.json" > "$out/runs/$name/eval.txt"
  echo "$name: $(grep -m1 -i 'top-1' "$out/runs/$name/eval.txt")"
done

step "report"
"$bin/metasemi-report" --output-dir "$out" --name results --no-paper \
  "$out/runs/metasemi" "$out/runs/baseline"

if [ "$tsne_points" != 0 ]; then
  step "t-SNE of the MetaSemi run's features"
  mpirun -np "$ranks" "$bin/metasemi-features" --checkpoint "$out/runs/metasemi/model_best.h5" \
    --data-path "$out/data" --label-split "labels-$num_label-seed$seed" \
    --max-points "$tsne_points" --seed "$seed" --output "$out/features.h5"
  "$bin/metasemi-tsne" --features "$out/features.h5" --save-path "$out/tsne" --seed "$seed"
fi

elapsed=$(( $(date +%s) - start ))
echo
cat "$out/results.md"
echo
echo "Outputs in $out (after $((elapsed / 60)) min $((elapsed % 60)) s):"
echo "  results.md / results.csv / results.tex   the error table"
echo "  results-error.png / .pdf                 test error against step, both runs"
[ "$tsne_points" != 0 ] && echo "  tsne/visualization.png / .pdf           t-SNE of the MetaSemi features"
echo "  runs/metasemi, runs/baseline             checkpoints, log.txt, metrics.jsonl, eval.json"
