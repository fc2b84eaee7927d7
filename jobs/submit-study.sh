#!/usr/bin/env bash
# Submits a whole study to Slurm as a chain of jobs and prints their ids and where the outputs
# go:  prep (shards and labeled splits) -> train (one job array over the seeds per method)
#      -> eval (after every training job succeeded) -> report (table, curves, t-SNE).
# Each step starts only when the one before succeeded (--dependency=afterok); a failed step
# cancels those after it.
#
# Usage: jobs/submit-study.sh --experiment NAME [options]
# Every option has an environment variable of the same meaning; the option wins.
#   --experiment NAME       STUDY_EXPERIMENT  config <config-dir>/NAME.cfg (e.g. cifar10-4000)
#   --methods LIST          STUDY_METHODS     comma-separated (default meta): "meta" trains
#                                             NAME.cfg, any other M trains NAME-M.cfg
#                                             (baseline, mixup, meta-only)
#   --seeds LIST            STUDY_SEEDS       comma-separated (default: the seed in NAME.cfg)
#   --config-dir DIR        STUDY_CONFIG_DIR  (default: jobs/configs of this repository)
#   --name NAME             STUDY_NAME        the study's folder name (default: the experiment)
#   --out DIR               METASEMI_OUT      studies root (default: <repository>/studies); the
#                                             study goes to DIR/NAME
#   --data-root DIR         METASEMI_DATA     shard sets root (default: <repository>/data); the
#                                             shards go to DIR/<dataset>
#   --raw DIR               METASEMI_RAW      downloads root (default: <repository>/raw; see
#                                             jobs/prep.sbatch for the file names)
#   --input PATH            STUDY_INPUT       the download to preprocess instead
#   --partition P           METASEMI_PARTITION  (default: the cluster's default partition)
#   --account A             METASEMI_ACCOUNT  (default: none)
#   --time T                METASEMI_TIME     training time limit (default 24:00:00)
#   --prep-time T           METASEMI_PREP_TIME    (default 04:00:00)
#   --eval-time T           METASEMI_EVAL_TIME    (default 01:00:00)
#   --report-time T         METASEMI_REPORT_TIME  (default 01:00:00)
#   --nodes N               METASEMI_NODES    nodes per training run (default 1)
#   --gpus-per-node G       METASEMI_GPUS_PER_NODE  0: CPU mode (default 0)
#   --ranks-per-node R      METASEMI_RANKS_PER_NODE (default: G, or 1 in CPU mode)
#   --cpus-per-rank C       METASEMI_CPUS_PER_RANK  threads per rank (default 1)
#   --prep-ranks N          METASEMI_PREP_RANKS     ranks of jpeg-shards (default 1)
#   --eval-ranks N          METASEMI_EVAL_RANKS     ranks of eval and features (default: R)
#   --modules "M ..."       METASEMI_MODULES  environment modules every job loads
#   --sbatch-args "ARGS"    METASEMI_SBATCH_ARGS  more sbatch options for every job (e.g. --qos=x)
#   --train-args "ARGS"     STUDY_TRAIN_ARGS  more metasemi-train flags (override the configs)
#   --signal-seconds S      METASEMI_SIGNAL_SECONDS  SIGUSR1 this long before the time limit
#                                             (checkpoint and requeue; default 300)
#   --tsne-points N         STUDY_TSNE_POINTS t-SNE of the first method's first seed with N
#                                             points (default 10000; 0: no t-SNE; none for
#                                             ImageNet)
#   --no-prep, --no-eval, --no-report         leave a step out
#   --dry-run                                 print the sbatch commands, submit nothing
# Also passed on to the jobs: METASEMI_BIN, METASEMI_ENV_FILE, METASEMI_EXEC,
# METASEMI_SRUN_ARGS (jobs/common.sh).
#
# Outputs in <out>/<name>/: runs/<config name>/seed<S>/ (checkpoints, log.txt, metrics.jsonl,
# eval.json), logs/<step>-<job id>.out (Slurm output), report/ (results.md/.csv/.tex,
# results-error.png/.pdf, tsne/).
set -euo pipefail
job=submit-study.sh
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

experiment=${STUDY_EXPERIMENT:-}
methods=${STUDY_METHODS:-meta}
seeds=${STUDY_SEEDS:-}
config_dir=${STUDY_CONFIG_DIR:-$root/jobs/configs}
name=${STUDY_NAME:-}
out_root=${METASEMI_OUT:-$root/studies}
data_root=${METASEMI_DATA:-$root/data}
raw=${METASEMI_RAW:-$root/raw}
input=${STUDY_INPUT:-}
partition=${METASEMI_PARTITION:-}
account=${METASEMI_ACCOUNT:-}
train_time=${METASEMI_TIME:-24:00:00}
prep_time=${METASEMI_PREP_TIME:-04:00:00}
eval_time=${METASEMI_EVAL_TIME:-01:00:00}
report_time=${METASEMI_REPORT_TIME:-01:00:00}
nodes=${METASEMI_NODES:-1}
gpus=${METASEMI_GPUS_PER_NODE:-0}
ranks=${METASEMI_RANKS_PER_NODE:-}
cpus=${METASEMI_CPUS_PER_RANK:-1}
prep_ranks=${METASEMI_PREP_RANKS:-1}
eval_ranks=${METASEMI_EVAL_RANKS:-}
modules=${METASEMI_MODULES:-}
sbatch_args=${METASEMI_SBATCH_ARGS:-}
train_args=${STUDY_TRAIN_ARGS:-}
signal_seconds=${METASEMI_SIGNAL_SECONDS:-300}
tsne_points=${STUDY_TSNE_POINTS:-10000}
do_prep=1 do_eval=1 do_report=1 dry_run=0

fail() {
  echo "$job: $*" >&2
  exit 2
}
while (($# > 0)); do
  opt=$1
  case $opt in
    --no-prep) do_prep=0 ;;
    --no-eval) do_eval=0 ;;
    --no-report) do_report=0 ;;
    --dry-run) dry_run=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    --*)
      (($# >= 2)) || fail "$opt: expected a value"
      value=$2
      shift
      case $opt in
        --experiment) experiment=$value ;;
        --methods) methods=$value ;;
        --seeds) seeds=$value ;;
        --config-dir) config_dir=$value ;;
        --name) name=$value ;;
        --out) out_root=$value ;;
        --data-root) data_root=$value ;;
        --raw) raw=$value ;;
        --input) input=$value ;;
        --partition) partition=$value ;;
        --account) account=$value ;;
        --time) train_time=$value ;;
        --prep-time) prep_time=$value ;;
        --eval-time) eval_time=$value ;;
        --report-time) report_time=$value ;;
        --nodes) nodes=$value ;;
        --gpus-per-node) gpus=$value ;;
        --ranks-per-node) ranks=$value ;;
        --cpus-per-rank) cpus=$value ;;
        --prep-ranks) prep_ranks=$value ;;
        --eval-ranks) eval_ranks=$value ;;
        --modules) modules=$value ;;
        --sbatch-args) sbatch_args=$value ;;
        --train-args) train_args=$value ;;
        --signal-seconds) signal_seconds=$value ;;
        --tsne-points) tsne_points=$value ;;
        *) fail "unknown option '$opt' (see --help)" ;;
      esac
      ;;
    *) fail "unexpected argument '$opt' (see --help)" ;;
  esac
  shift
done

count() { [[ "$2" =~ ^[0-9]+$ ]] && (($2 >= $3)) || fail "$1: expected an integer >= $3, got '$2'"; }
[ -n "$experiment" ] || fail "--experiment: not set (a config name in $config_dir, e.g. cifar10-4000)"
count --nodes "$nodes" 1
count --gpus-per-node "$gpus" 0
ranks=${ranks:-$((gpus > 0 ? gpus : 1))}
count --ranks-per-node "$ranks" 1
count --cpus-per-rank "$cpus" 1
count --prep-ranks "$prep_ranks" 1
eval_ranks=${eval_ranks:-$ranks}
count --eval-ranks "$eval_ranks" 1
count --signal-seconds "$signal_seconds" 0
count --tsne-points "$tsne_points" 0
((gpus == 0 || gpus == ranks)) || fail "--ranks-per-node: expected one rank per GPU ($gpus), got $ranks"
[ -d "$config_dir" ] || fail "--config-dir: no such folder '$config_dir'"
config_dir=$(cd "$config_dir" && pwd)
name=${name:-$experiment}
study=$(realpath -m "$out_root/$name")
data_root=$(realpath -m "$data_root")
raw=$(realpath -m "$raw")
[ -n "$input" ] && input=$(realpath -m "$input")

# The programs resolve the configs here too, so a wrong setting stops before anything is queued.
export METASEMI_MODULES=$modules
ms_modules_optional=1
source "$root/jobs/common.sh"
ms_need metasemi-train

read -r -a method_list <<< "${methods//,/ }"
((${#method_list[@]} > 0)) || fail "--methods: empty"
configs=()
dataset=
for m in "${method_list[@]}"; do
  file=$config_dir/$experiment.cfg
  [ "$m" = meta ] || file=$config_dir/$experiment-$m.cfg
  [ -f "$file" ] || fail "--methods $m: no config '$file'"
  resolved=$(ms_resolve "$file") || fail "config '$file' is refused by metasemi-train (message above)"
  d=$(ms_setting dataset "$resolved")
  [ -z "$dataset" ] || [ "$d" = "$dataset" ] || fail "--methods: '$file' trains on '$d', not '$dataset'"
  dataset=$d
  [ -n "$seeds" ] || seeds=$(ms_setting seed "$resolved")
  configs+=("$file")
done
read -r -a seed_list <<< "${seeds//,/ }"
for s in "${seed_list[@]}"; do [[ "$s" =~ ^[0-9]+$ ]] || fail "--seeds: expected integers, got '$s'"; done
seeds=$(
  IFS=,
  echo "${seed_list[*]}"
)
data=$data_root/$dataset

# Settings every job gets; each sbatch runs with --export=ALL and these in its environment.
common_env=(METASEMI_ROOT="$root" METASEMI_BIN="$ms_bin" METASEMI_MODULES="$modules")
for v in METASEMI_ENV_FILE METASEMI_EXEC METASEMI_SRUN_ARGS; do
  [ -n "${!v:-}" ] && common_env+=("$v=${!v}")
done
read -r -a site_args <<< "$sbatch_args"
base=(--parsable --export=ALL)
[ -n "$partition" ] && base+=(--partition="$partition")
[ -n "$account" ] && base+=(--account="$account")

# Submits (or, with --dry-run, prints) one job and sets `id`:
#   submit PLACEHOLDER [VAR=value...] -- [sbatch options...] SCRIPT
# PLACEHOLDER stands for the job id in a dry run's later commands.
id=
submit() {
  local placeholder=$1 env=() args=()
  shift
  while [ "$1" != -- ]; do
    env+=("$1")
    shift
  done
  shift
  args=("${base[@]}" "${@:1:$#-1}" "${site_args[@]}" "${@: -1}")
  if ((dry_run)); then
    id=$placeholder
    printf '%q ' env "${common_env[@]}" "${env[@]}" sbatch "${args[@]}"
    echo
  else
    id=$(env "${common_env[@]}" "${env[@]}" sbatch "${args[@]}") ||
      fail "sbatch refused the ${*: -1} job (message above)"
    id=${id%%;*}
  fi
}

after() {  # dependency options on the ids given
  local ids=("$@")
  ((${#ids[@]} == 0)) && return 0
  local joined
  joined=$(
    IFS=:
    echo "${ids[*]}"
  )
  echo "--dependency=afterok:$joined --kill-on-invalid-dep=yes"
}

((dry_run)) || mkdir -p "$study/logs" "$study/runs"
prep_id=
if ((do_prep)); then
  env_prep=(PREP_CONFIG="${configs[0]}" PREP_SEEDS="$seeds" PREP_OUT="$data" METASEMI_RAW="$raw")
  [ -n "$input" ] && env_prep+=(PREP_INPUT="$input")
  submit '$PREP_ID' "${env_prep[@]}" -- --job-name="ms-prep-$name" --ntasks="$prep_ranks" \
    --cpus-per-task="$cpus" --time="$prep_time" --output="$study/logs/prep-%j.out" \
    "$root/jobs/prep.sbatch"
  prep_id=$id
fi

train_ids=()
index=0
for file in "${configs[@]}"; do
  stem=$(basename "$file" .cfg)
  env_train=(TRAIN_CONFIG="$file" TRAIN_SEEDS="$seeds" TRAIN_OUT="$study/runs" TRAIN_DATA="$data")
  ((gpus > 0)) && env_train+=(TRAIN_GPU=1)
  [ -n "$train_args" ] && env_train+=(TRAIN_ARGS="$train_args")
  resources=(--nodes="$nodes" --ntasks-per-node="$ranks" --cpus-per-task="$cpus")
  ((gpus > 0)) && resources+=(--gpus-per-node="$gpus")
  read -r -a dep <<< "$(after ${prep_id:+"$prep_id"})"
  submit "\$TRAIN_ID_$index" "${env_train[@]}" -- --job-name="ms-train-$stem" \
    --array="0-$((${#seed_list[@]} - 1))" "${resources[@]}" --time="$train_time" \
    --signal="B:USR1@$signal_seconds" --output="$study/logs/train-$stem-%A_%a.out" \
    "${dep[@]}" "$root/jobs/train.sbatch"
  train_ids+=("$id")
  index=$((index + 1))
done

last=("${train_ids[@]}")
eval_id=
if ((do_eval)); then
  read -r -a dep <<< "$(after "${train_ids[@]}")"
  submit '$EVAL_ID' EVAL_RUNS="$study/runs" EVAL_DATA="$data" -- --job-name="ms-eval-$name" \
    --ntasks="$eval_ranks" --cpus-per-task="$cpus" --time="$eval_time" \
    --output="$study/logs/eval-%j.out" "${dep[@]}" "$root/jobs/eval.sbatch"
  eval_id=$id
  last=("$eval_id")
fi

report_id=
if ((do_report)); then
  env_report=(REPORT_RUNS="$study/runs" REPORT_OUT="$study/report")
  # metasemi-features reads train/test shard sets; the reference draws t-SNE for SVHN and CIFAR.
  if ((tsne_points > 0)) && [ "$dataset" != imagenet ]; then
    first=$(basename "${configs[0]}" .cfg)
    env_report+=(REPORT_TSNE_RUN="$study/runs/$first/seed${seed_list[0]}" REPORT_TSNE_POINTS="$tsne_points")
  fi
  read -r -a dep <<< "$(after "${last[@]}")"
  submit '$REPORT_ID' "${env_report[@]}" -- --job-name="ms-report-$name" --ntasks="$eval_ranks" \
    --cpus-per-task="$cpus" --time="$report_time" --output="$study/logs/report-%j.out" \
    "${dep[@]}" "$root/jobs/report.sbatch"
  report_id=$id
fi

((dry_run)) && echo "(dry run: nothing submitted)"
echo "study $name: $experiment, methods ${method_list[*]}, seeds $seeds, $dataset shards in $data"
[ -n "$prep_id" ] && echo "  prep    job $prep_id"
for i in "${!train_ids[@]}"; do
  echo "  train   job ${train_ids[$i]} (array over ${#seed_list[@]} seeds) $(basename "${configs[$i]}")"
done
[ -n "$eval_id" ] && echo "  eval    job $eval_id"
[ -n "$report_id" ] && echo "  report  job $report_id"
echo "  runs    $study/runs/<config>/seed<S>/"
echo "  logs    $study/logs/"
((do_report)) && echo "  report  $study/report/results.md"
echo "  watch   squeue -u $(id -un)   (a preempted run is requeued and waits with Reason=BeginTime)"
