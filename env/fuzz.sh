#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, AddressSanitizer + UndefinedBehaviorSanitizer)
# into build-fuzz/ and runs each for a while, starting from seeds written by the project's own
# writers; prints one line per target (runs, coverage, crashes). Not part of CI.
# Usage: env/fuzz.sh [seconds per target (600)] [targets...]
# FUZZ_JOBS: targets run at once (default: the number of cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-600}"
shift || true
targets=("$@")
(( ${#targets[@]} )) || targets=(idx cifar archive svhn jpeg shard_index shard_data checkpoint)
jobs="${FUZZ_JOBS:-$(nproc)}"

"$root/env/setup.sh"
if ! command -v clang++ > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    > /dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev > /dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev > /dev/null
fi

build="$root/build-fuzz"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/metasemi-ccache}"
export CCACHE_BASEDIR="$root"
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > /dev/null
cmake --build "$build" -j "$(nproc)"

seeds="$build/seeds"
rm -rf "$seeds"
"$build/fuzz_seeds" "$seeds"
mkdir -p "$seeds/archive"
tar -czf "$seeds/archive/cifar.tar.gz" -C "$seeds/cifar" two-records names

# Leak checks stay on for the raw-format readers; HDF5 and LibTorch keep caches that outlive
# one input, which LeakSanitizer would report.
# HDF5 1.10 itself crashes and hangs on some damaged files (see the logs): those targets run
# in fork mode, which records each crash, timeout or OOM and goes on for the whole time.
run_one() {
  local t="$1" leaks=1 seed="$1" mode=""
  case "$t" in
    shard_index | shard_data | checkpoint)
      leaks=0
      mode="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
      ;;
  esac
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t" "$build/logs"
  ASAN_OPTIONS="detect_leaks=$leaks:allocator_may_return_null=0:malloc_limit_mb=2048" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" TMPDIR="$build/tmp-$t" \
    bash -c "mkdir -p '$build/tmp-$t' && '$build/fuzz_$t' -max_total_time=$seconds -timeout=20 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -detect_leaks=$leaks $mode \
      -artifact_prefix='$build/artifacts/$t/' '$build/corpus/$t' '$seeds/$seed'" \
    > "$build/logs/$t.log" 2>&1 || true
  rm -rf "$build/tmp-$t"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if (( running >= jobs )); then
    wait -n
    running=$((running - 1))
  fi
done
wait

printf '%-12s %10s %6s %6s %7s %8s %5s %5s\n' target runs cov ft corpus crashes hangs ooms
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  corpus=$(find "$build/corpus/$t" -type f | wc -l)
  a="$build/artifacts/$t"
  crashes=$(find "$a" -type f \( -name 'crash-*' -o -name 'leak-*' \) | wc -l)
  hangs=$(find "$a" -type f -name 'timeout-*' | wc -l)
  ooms=$(find "$a" -type f -name 'oom-*' | wc -l)
  printf '%-12s %10s %6s %6s %7s %8s %5s %5s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
    "$corpus" "$crashes" "$hangs" "$ooms"
done
echo "logs: $build/logs; crashing inputs: $build/artifacts/<target>/"
