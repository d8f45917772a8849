/* train_shard.h: the replay buffer split over data-parallel ranks (private to src/train).
 *
 * The buffer is one logical ring (or reservoir) of S images; slot s is kept by rank s % N at
 * local index s / N (one process: N = 1, the whole buffer, local index = slot). For each chain
 * g of the global batch (g = rank B + b) the slot it starts from and the slot its last sample
 * goes to are functions of (seed, step, g) and the global counters, which every rank computes
 * alike (train.c's plan), so the images move in one all-to-all each way without a request.
 * comm NULL: one process, the exchange is a copy.
 */
#ifndef VKEBM_TRAIN_SHARD_H
#define VKEBM_TRAIN_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "vkebm/train_comm.h"

/* Slots of a buffer of S images that rank `rank` of n keeps: those with s % n == rank. */
size_t shard_slots(int64_t S, int rank, int n);

/* The images the chains of this rank start from: out[b] <- slot plan[rank B + b] for every b
 * whose plan is >= 0 (the others' rows are left alone). plan: [n B], the global plan;
 * shard: this rank's slots [shard_slots, npix]; send, recv: scratch of n B images each.
 * 0 or -1 (comm failed). */
int shard_fetch(const ebm_train_comm *comm, const uint8_t *shard, size_t npix, const int64_t *plan,
                int B, uint8_t *out, uint8_t *send, uint8_t *recv);

/* Stores this rank's last samples mine[b] (quantised, [B, npix]) into slots plan[rank B + b]
 * (-1: dropped); chains given the same slot are written in chain order, the later one wins,
 * as in one process. send, recv: scratch of n B images each. 0 or -1. */
int shard_store(const ebm_train_comm *comm, uint8_t *shard, size_t npix, const int64_t *plan,
                int B, const uint8_t *mine, uint8_t *send, uint8_t *recv);

/* The whole buffer [S, npix] in slot order into full on rank 0 (the other ranks pass NULL);
 * every rank calls it. 0 or -1 (comm failed or out of memory). */
int shard_gather(const ebm_train_comm *comm, const uint8_t *shard, size_t npix, int64_t S,
                 uint8_t *full);

/* This rank's slots of a whole buffer: shard[k] = full[k n + rank]. */
void shard_take(uint8_t *shard, const uint8_t *full, size_t npix, int64_t S, int rank, int n);

#endif /* VKEBM_TRAIN_SHARD_H */
