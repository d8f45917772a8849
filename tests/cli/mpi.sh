#!/usr/bin/env bash
# mpi.sh: data-parallel `mpirun -np N vkebm train` on the cpu backend, tiny network at 8x8
# (docs/distributed.md). Skips (77) when vkebm has no MPI built in, mpirun is missing, or there
# is no python3 with numpy (tests/st_compare.py reads the checkpoints).
#  1. N ranks of batch B/N against one process of batch B, after 8 iterations, every tensor of
#     the checkpoint (weights, spectral-norm vectors, Adam moments, EMA, train.state; not the
#     uint8 replay buffer, where a pixel on a quantisation edge may round the other way): within
#     1e-5 for plain contrastive divergence (measured here: 1.5e-7, N = 2 and 4), within 1e-3
#     with the label term at temperature 0.01, whose 1/T scales the gradient's rounding 100-fold
#     (measured: 1.9e-6); also with --data-dir, and on the Vulkan device when there is one. The
#     margins are for other CPUs: Adam divides each gradient element by its own size, so an
#     element near zero whose rounding differs moves by up to ~lr/100. And the check can fail:
#     one process of batch B/N (every rank training the same slice) is 3.6e-3 or more away.
#  2. Checkpoint and resume under MPI are exact for the same N: 3 + 3 iterations give the bits
#     of 6; a checkpoint resumes on another rank count that divides its batch (re-sharded,
#     within 1e-5; measured 1.2e-7) and is refused with one line on one that does not.
#  3. Only rank 0 writes: one metrics row per iteration.
#  4. A rank killed with SIGKILL ends the job non-zero within 30 s, and the last checkpoint
#     loads and trains on; SIGTERM to mpirun likewise.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
"$VKEBM" devices 2>/dev/null | grep -q "^mpi: built in" || { echo "no MPI built in: skipping"; exit 77; }
MPIRUN=$(command -v mpirun || command -v mpiexec) || { echo "no mpirun: skipping"; exit 77; }
need_python numpy "import numpy"
CMP=("$PY" "$SRC/tests/st_compare.py" --quiet)

# Open MPI refuses root unless told (its documented switches); CI runs as root. --oversubscribe:
# more ranks than this machine's cores.
MPI_ARGS=()
if "$MPIRUN" --version 2>&1 | grep -q "Open MPI"; then
  MPI_ARGS+=(--oversubscribe)
  if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
fi
export VKEBM_THREADS=1
mpi() { # mpi N ARGS...: vkebm train on N ranks, never longer than two minutes
  local n=$1
  shift
  timeout 120 "$MPIRUN" "${MPI_ARGS[@]}" -np "$n" "$VKEBM" train "$@"
}
TINY=(--config tiny --size 8 --langevin-steps 3 --backend cpu --seed 3 -q --steps 8)

# 1. N ranks of batch B/N = one process of batch B
"$VKEBM" data --spec general -o "$T/data" --size 8 -n 48 --seed 2 -q || fail "vkebm data"
check_equal() { # check_equal NAME TOL FLAGS...: one process of batch 4 against 2 and 4 ranks
  local name=$1 tol=$2
  shift 2
  VKEBM_THREADS=1 "$VKEBM" train "${TINY[@]}" "$@" --batch 4 -o "$T/$name.1.safetensors" ||
    fail "$name: one process"
  mpi 2 "${TINY[@]}" "$@" --batch 2 -o "$T/$name.2.safetensors" >"$T/err" 2>&1 ||
    fail "$name: 2 ranks: $(cat "$T/err")"
  mpi 4 "${TINY[@]}" "$@" --batch 1 -o "$T/$name.4.safetensors" >"$T/err" 2>&1 ||
    fail "$name: 4 ranks: $(cat "$T/err")"
  for n in 2 4; do
    "${CMP[@]}" --skip extra.replay.images --atol "$tol" "$T/$name.1.ckpt.safetensors" \
      "$T/$name.$n.ckpt.safetensors" || fail "$name: $n ranks of batch $((4 / n)) differ from one process of batch 4"
  done
}
check_equal cd 1e-5 --concept color --recipe paper --buffer 6
check_equal label 1e-3 --concept position --recipe practical --reservoir --label-weight 1 --buffer 5
check_equal dir 1e-5 --concept shape --recipe paper --data-dir "$T/data" --buffer 7 --chain-init data
# the comparison can fail: every rank training the same slice is one process of batch 2
VKEBM_THREADS=1 "$VKEBM" train "${TINY[@]}" --concept color --recipe paper --buffer 6 --batch 2 \
  -o "$T/slice.safetensors" || fail "one process of batch 2"
"${CMP[@]}" --skip extra.replay.images --skip extra.train.state --atol 1e9 --differ 1e-3 "$T/cd.1.ckpt.safetensors" \
  "$T/slice.ckpt.safetensors" || fail "a run of one slice is as close as the data-parallel one"

# the same on the Vulkan device (lavapipe here: one device, which both ranks share)
if "$VKEBM" devices >/dev/null 2>&1; then
  V=(--config tiny --size 8 --langevin-steps 3 --backend vulkan --seed 3 -q --steps 4 --concept color --recipe paper --buffer 6)
  LP_NUM_THREADS=1 "$VKEBM" train "${V[@]}" --batch 4 -o "$T/vk.1.safetensors" || fail "vulkan: one process"
  LP_NUM_THREADS=1 mpi 2 "${V[@]}" --batch 2 -o "$T/vk.2.safetensors" >"$T/err" 2>&1 || fail "vulkan: 2 ranks: $(cat "$T/err")"
  "${CMP[@]}" --skip extra.replay.images --atol 1e-5 "$T/vk.1.ckpt.safetensors" "$T/vk.2.ckpt.safetensors" ||
    fail "vulkan: 2 ranks differ from one process"
else
  echo "no Vulkan device: the vulkan ranks are not checked"
fi

# 3. rank 0 alone writes the metrics: 8 rows, not 16
[ "$(grep -c '^[0-9]' "$T/cd.2.metrics.csv")" -eq 8 ] || fail "metrics rows: $(cat "$T/cd.2.metrics.csv")"
cmp -s <(cut -d, -f1,3-6 "$T/cd.1.metrics.csv" | tail -n +3) <(cut -d, -f1,3-6 "$T/cd.2.metrics.csv" | tail -n +3) ||
  echo "note: metrics (loss, energies, gradient norm) of 2 ranks and one process differ in the printed digits"

# 2. resume: exact for the same N; another N re-shards or is refused
R=(--concept color --recipe paper --buffer 6 --batch 2 --config tiny --size 8 --langevin-steps 3 --backend cpu --seed 3 -q)
mpi 2 "${R[@]}" --steps 6 -o "$T/full.safetensors" >"$T/err" 2>&1 || fail "6 steps: $(cat "$T/err")"
mpi 2 "${R[@]}" --steps 3 -o "$T/half.safetensors" >"$T/err" 2>&1 || fail "3 steps: $(cat "$T/err")"
cp "$T/half.ckpt.safetensors" "$T/half3.ckpt.safetensors"
mpi 2 --resume "$T/half.ckpt.safetensors" --steps 6 -o "$T/resumed.safetensors" --backend cpu -q >"$T/err" 2>&1 ||
  fail "resume on 2 ranks: $(cat "$T/err")"
"${CMP[@]}" --atol 0 "$T/full.ckpt.safetensors" "$T/resumed.ckpt.safetensors" ||
  fail "3 + 3 iterations on 2 ranks are not the bits of 6"
cmp -s "$T/full.safetensors" "$T/resumed.safetensors" || fail "resumed model file differs"
"$VKEBM" train --resume "$T/half3.ckpt.safetensors" --steps 6 -o "$T/one.safetensors" \
  --checkpoint "$T/one.ckpt.safetensors" --backend cpu -q || fail "resume a 2-rank checkpoint in one process"
"${CMP[@]}" --skip extra.replay.images --atol 1e-5 "$T/full.ckpt.safetensors" "$T/one.ckpt.safetensors" ||
  fail "a 2-rank checkpoint resumed in one process strays"
mpi 3 --resume "$T/half3.ckpt.safetensors" --steps 6 -o "$T/three.safetensors" --backend cpu -q >"$T/out" 2>"$T/err" &&
  fail "resume of batch 4 on 3 ranks was accepted"
grep "^vkebm train" "$T/err" >"$T/lines"
[ "$(wc -l <"$T/lines")" -eq 1 ] && grep -q "on 3 ranks: its batch of 4 does not split evenly" "$T/lines" ||
  fail "refusal on 3 ranks is not one line: $(cat "$T/err")"
[ -e "$T/three.safetensors" ] && fail "a refused run wrote a model"

# 4. a rank that dies, and a job that is terminated
LONG=(--concept color --recipe paper --buffer 6 --batch 2 --config tiny --size 8 --langevin-steps 3
      --backend cpu --seed 3 -q --steps 10000000 --checkpoint-every 20)
rank_pid() { # rank_pid RANK MARKER: the pid of that rank of the job whose command line has MARKER
  local p
  for p in $(pgrep -f -- "$2"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = vkebm ] || continue
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1\|PMI_RANK=$1" && { echo "$p"; return 0; }
  done
  return 1
}
launcher_pid() { # launcher_pid MARKER: mpirun's pid (Open MPI's is orterun underneath)
  local p
  for p in $(pgrep -f -- "$1"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in mpirun | orterun | mpiexec* | prterun | hydra*) echo "$p"; return 0 ;; esac
  done
  return 1
}
wait_for() { # wait_for FILE: until it exists (30 s at most)
  for _ in $(seq 300); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}
for how in kill-rank-1 term-mpirun; do
  out="$T/$how.safetensors"
  mpi 2 "${LONG[@]}" -o "$out" >"$T/$how.log" 2>&1 &
  job=$!
  wait_for "$T/$how.ckpt.safetensors" || fail "$how: no checkpoint within 30 s: $(cat "$T/$how.log")"
  sleep 0.5
  if [ $how = kill-rank-1 ]; then
    victim=$(rank_pid 1 "$out") || fail "$how: rank 1 not found"
    kill -KILL "$victim"
  else
    launcher=$(launcher_pid "$out") || fail "$how: mpirun not found"
    kill -TERM "$launcher"
  fi
  t0=$(date +%s)
  wait "$job"
  rc=$?
  took=$(($(date +%s) - t0))
  [ "$rc" -ne 0 ] || fail "$how: the job exited 0"
  [ "$rc" -ne 124 ] && [ "$took" -le 30 ] || fail "$how: the job took $took s to end (exit $rc)"
  echo "$how: the job ended in $took s with exit $rc: $(grep -m1 -i "noticed\|terminated at" "$T/$how.log")"
  # the last checkpoint is whole: it resumes and trains two more iterations
  at=$("$VKEBM" inspect "$T/$how.ckpt.safetensors" 2>/dev/null | sed -n 's/^ *step = \([0-9]*\)$/\1/p')
  [ -n "$at" ] || fail "$how: the checkpoint does not load: $("$VKEBM" inspect "$T/$how.ckpt.safetensors" 2>&1 | tail -1)"
  mpi 2 --resume "$T/$how.ckpt.safetensors" --steps $((at + 2)) -o "$T/$how.after.safetensors" \
    --backend cpu -q >"$T/err" 2>&1 || fail "$how: resuming the last checkpoint (step $at): $(cat "$T/err")"
done
echo "mpi: ok"
