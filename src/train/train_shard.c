/* train_shard.c: the replay buffer split over data-parallel ranks (train_shard.h), and
 * ebm_train_comm_same (train_comm.h).
 *
 * Owns nothing: the shard and the scratch images are train.c's. Every function walks the
 * global plan (one slot per chain of the global batch) in chain order, so the order in which
 * images are packed, sent and written is the same on every rank and the same as one process's.
 */
#include <stdlib.h>
#include <string.h>

#include "train_shard.h"

size_t shard_slots(int64_t S, int rank, int n) {
  return S > rank ? (size_t)((S - rank + n - 1) / n) : 0;
}

/* comm->exchange, or a copy in one process. */
static int exchange(const ebm_train_comm *comm, const void *send, const int *send_counts,
                    void *recv, const int *recv_counts, size_t item_bytes) {
  if (comm) return comm->exchange(comm->ctx, send, send_counts, recv, recv_counts, item_bytes);
  if (send_counts[0] != recv_counts[0]) return -1;
  if (send_counts[0] > 0) memcpy(recv, send, (size_t)send_counts[0] * item_bytes);
  return 0;
}

/* Two arrays of n counts (send, receive) and n offsets, zeroed. NULL when out of memory. */
static int *counts_alloc(int n) { return calloc((size_t)3 * n, sizeof(int)); }

/* off[q] = sum of cnt[0..q) */
static void prefix(const int *cnt, int *off, int n) {
  int s = 0;
  for (int q = 0; q < n; q++) off[q] = s, s += cnt[q];
}

int shard_fetch(const ebm_train_comm *comm, const uint8_t *shard, size_t npix, const int64_t *plan,
                int B, uint8_t *out, uint8_t *send, uint8_t *recv) {
  const int n = comm ? comm->size : 1, me = comm ? comm->rank : 0;
  const int64_t G = (int64_t)n * B;
  int *cnt = counts_alloc(n);
  if (!cnt) return -1;
  int *scnt = cnt, *rcnt = cnt + n, *off = cnt + 2 * n;
  /* send, grouped by the chain's rank (g / B, ascending with g): the slots this rank keeps */
  size_t k = 0;
  for (int64_t g = 0; g < G; g++) {
    if (plan[g] < 0) continue;
    const int owner = (int)(plan[g] % n), dst = (int)(g / B);
    if (owner == me) {
      memcpy(send + k++ * npix, shard + (size_t)(plan[g] / n) * npix, npix);
      scnt[dst]++;
    }
    if (dst == me) rcnt[owner]++;
  }
  int rc = exchange(comm, send, scnt, recv, rcnt, npix);
  if (rc == 0) {
    /* received grouped by the slot's rank, each group in chain order */
    prefix(rcnt, off, n);
    for (int b = 0; b < B; b++) {
      const int64_t slot = plan[(int64_t)me * B + b];
      if (slot >= 0) memcpy(out + (size_t)b * npix, recv + (size_t)off[slot % n]++ * npix, npix);
    }
  }
  free(cnt);
  return rc;
}

int shard_store(const ebm_train_comm *comm, uint8_t *shard, size_t npix, const int64_t *plan,
                int B, const uint8_t *mine, uint8_t *send, uint8_t *recv) {
  const int n = comm ? comm->size : 1, me = comm ? comm->rank : 0;
  const int64_t G = (int64_t)n * B;
  int *cnt = counts_alloc(n);
  if (!cnt) return -1;
  int *scnt = cnt, *rcnt = cnt + n, *off = cnt + 2 * n;
  for (int64_t g = 0; g < G; g++) {
    if (plan[g] < 0) continue;
    const int owner = (int)(plan[g] % n), src = (int)(g / B);
    if (src == me) scnt[owner]++;
    if (owner == me) rcnt[src]++;
  }
  /* send, grouped by the slot's rank, each group in chain order */
  prefix(scnt, off, n);
  for (int b = 0; b < B; b++) {
    const int64_t slot = plan[(int64_t)me * B + b];
    if (slot >= 0) memcpy(send + (size_t)off[slot % n]++ * npix, mine + (size_t)b * npix, npix);
  }
  int rc = exchange(comm, send, scnt, recv, rcnt, npix);
  if (rc == 0) {
    /* received from rank 0, 1, ...: chain order, so a later chain overwrites an earlier one */
    size_t k = 0;
    for (int64_t g = 0; g < G; g++)
      if (plan[g] >= 0 && plan[g] % n == me)
        memcpy(shard + (size_t)(plan[g] / n) * npix, recv + k++ * npix, npix);
  }
  free(cnt);
  return rc;
}

int shard_gather(const ebm_train_comm *comm, const uint8_t *shard, size_t npix, int64_t S,
                 uint8_t *full) {
  const int n = comm ? comm->size : 1, me = comm ? comm->rank : 0;
  if (n == 1) {
    memcpy(full, shard, (size_t)S * npix);
    return 0;
  }
  int *cnt = counts_alloc(n);
  uint8_t *recv = me == 0 ? malloc((size_t)S * npix) : NULL;
  int rc = -1;
  if (cnt && (me != 0 || recv)) {
    int *scnt = cnt, *rcnt = cnt + n, *off = cnt + 2 * n;
    scnt[0] = (int)shard_slots(S, me, n);
    for (int q = 0; q < n && me == 0; q++) rcnt[q] = (int)shard_slots(S, q, n);
    rc = exchange(comm, shard, scnt, recv, rcnt, npix);
    if (rc == 0 && me == 0) {
      prefix(rcnt, off, n);
      for (int q = 0; q < n; q++)
        for (int k = 0; k < rcnt[q]; k++)
          memcpy(full + ((size_t)k * n + q) * npix, recv + ((size_t)off[q] + k) * npix, npix);
    }
  } /* else out of memory: -1, and the caller ends the job (the other ranks wait in the call) */
  free(recv);
  free(cnt);
  return rc;
}

void shard_take(uint8_t *shard, const uint8_t *full, size_t npix, int64_t S, int rank, int n) {
  const size_t mine = shard_slots(S, rank, n);
  for (size_t k = 0; k < mine; k++)
    memcpy(shard + k * npix, full + (k * (size_t)n + (size_t)rank) * npix, npix);
}

int ebm_train_comm_same(const ebm_train_comm *comm, const void *data, size_t bytes, int *same) {
  *same = 1;
  if (!comm) return 0;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < bytes; i++) h = (h ^ ((const uint8_t *)data)[i]) * 1099511628211ull;
  /* rank 0's hash to everyone (two 32-bit halves are exact in doubles), then a count of the
   * ranks that differ from it */
  double v[2] = {0, 0};
  if (comm->rank == 0) v[0] = (double)(h & 0xffffffffu), v[1] = (double)(h >> 32);
  if (comm->sum_f64(comm->ctx, v, 2) != 0) return -1;
  double differ = ((uint64_t)v[0] | (uint64_t)v[1] << 32) != h;
  if (comm->sum_f64(comm->ctx, &differ, 1) != 0) return -1;
  *same = differ == 0;
  return 0;
}
