/* test_train_dist.c: the data-parallel trainer (include/vkebm/train_comm.h) with its ranks as
 * threads of this process, each with its own cpu backend, over an in-process ebm_train_comm
 * (shared pointers and a barrier; the ranks take turns, see g_turn), so it needs no MPI and
 * runs in the sanitizer stage too.
 * tests/cli/mpi.sh runs the same under mpirun.
 *   - 2 and 3 ranks of batch 6/N against one process of batch 6 on the tiny network, ring and
 *     reservoir, a buffer of 5 (smaller than the batch: chains of one iteration share slots,
 *     the later one wins) and of 64: after 6 iterations at lr 1e-3 the weights agree within
 *     1e-5 (measured: 2.4e-7 on 2 ranks, 1.5e-6 on 3: the gradient's terms are added in another
 *     order; the margin is for other CPUs) and each rank's negatives are its rows of the one process's (within 1e-5: chains
 *     on the wrong rows, noise or scenes would be ~0.1 off); every rank holds the
 *     same weights bit for bit; the checkpoint's replay buffer, gathered from the shards, is the
 *     one process's byte for byte;
 *   - 3 + 3 iterations on 2 ranks, checkpointed and resumed on 2 ranks, give the bits of 6;
 *     the same checkpoint resumes on 1 rank (re-sharded) and is refused on 4 ranks (batch 6).
 *   - the shard helpers on their own: a buffer of 7 images over 3 ranks gathers back whole.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/train_shard.h"
#include "testutil.h"
#include "vkebm/train.h"
#include "vkebm/train_comm.h"

#define MAX_RANKS 4

/* ---- the ranks as threads -------------------------------------------------------------------- */

typedef struct shared_comm {
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int arrived, generation, failed; /* a barrier a failing rank can break (as MPI_Abort would) */
  const void *ptr[MAX_RANKS];
  const int *counts[MAX_RANKS];
} shared_comm;

/* The library's cpu backend keeps process-global state (its thread pool, the BLAS's settings:
 * ops are issued from one host thread at a time, src/backend/cpu_ops.c), which separate MPI
 * processes never share. So the rank threads take turns: a rank runs only while it holds
 * g_turn, and lets go of it while it waits for the others in a collective. */
static pthread_mutex_t g_turn = PTHREAD_MUTEX_INITIALIZER;

/* Waits for every rank; -1 (at once, and for everyone waiting) once a rank has failed. */
static int barrier(shared_comm *s) {
  pthread_mutex_unlock(&g_turn);
  pthread_mutex_lock(&s->mu);
  const int gen = s->generation;
  if (!s->failed && ++s->arrived == s->n) {
    s->arrived = 0;
    s->generation++;
    pthread_cond_broadcast(&s->cv);
  }
  while (!s->failed && gen == s->generation) pthread_cond_wait(&s->cv, &s->mu);
  const int failed = s->failed;
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_lock(&g_turn);
  return failed ? -1 : 0;
}

static void break_barrier(shared_comm *s) {
  pthread_mutex_lock(&s->mu);
  s->failed = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

typedef struct rank_ctx {
  shared_comm *s;
  int rank;
} rank_ctx;

static int t_sum_f64(void *ctx, double *v, size_t n) {
  rank_ctx *r = ctx;
  shared_comm *s = r->s;
  double *tmp = calloc(n + 1, sizeof(double));
  s->ptr[r->rank] = v;
  if (!tmp || barrier(s) != 0) return free(tmp), -1;
  for (size_t i = 0; i < n; i++)
    for (int q = 0; q < s->n; q++) tmp[i] += ((const double *)s->ptr[q])[i];
  int rc = barrier(s); /* everyone has read before anyone writes */
  memcpy(v, tmp, n * sizeof(double));
  free(tmp);
  return rc;
}

static int t_mean_f32(void *ctx, float *v, size_t n) {
  rank_ctx *r = ctx;
  shared_comm *s = r->s;
  float *tmp = malloc((n + 1) * sizeof(float));
  s->ptr[r->rank] = v;
  if (!tmp || barrier(s) != 0) return free(tmp), -1;
  for (size_t i = 0; i < n; i++) {
    double sum = 0;
    for (int q = 0; q < s->n; q++) sum += ((const float *)s->ptr[q])[i];
    tmp[i] = (float)(sum / s->n);
  }
  int rc = barrier(s);
  memcpy(v, tmp, n * sizeof(float));
  free(tmp);
  return rc;
}

static int t_exchange(void *ctx, const void *send, const int *send_counts, void *recv,
                      const int *recv_counts, size_t item) {
  rank_ctx *r = ctx;
  shared_comm *s = r->s;
  s->ptr[r->rank] = send;
  s->counts[r->rank] = send_counts;
  if (barrier(s) != 0) return -1;
  int rc = 0;
  size_t at = 0;
  for (int q = 0; q < s->n; q++) { /* rank q's items for me sit after its items for ranks < me */
    size_t off = 0;
    for (int k = 0; k < r->rank; k++) off += (size_t)s->counts[q][k];
    if (s->counts[q][r->rank] != recv_counts[q]) rc = -1;
    else if (recv_counts[q] > 0)
      memcpy((char *)recv + at * item, (const char *)s->ptr[q] + off * item, (size_t)recv_counts[q] * item);
    at += (size_t)recv_counts[q];
  }
  return barrier(s) != 0 ? -1 : rc;
}

/* What each rank does: a run of `steps` iterations (optionally resumed, optionally saved). */
typedef struct job {
  shared_comm *s;
  int rank;
  ebm_train_config cfg;        /* batch = the global batch; each rank takes batch / n */
  const char *resume, *save;
  int steps;
  /* out */
  int rc;
  char err[512];
  float *params, *neg;         /* [P], [B, npix] */
  size_t nparams;
} job;

static void rank_body(job *j) {
  rank_ctx rc = {j->s, j->rank};
  ebm_train_comm comm = {.rank = j->rank, .size = j->s->n, .ctx = &rc, .sum_f64 = t_sum_f64,
                         .mean_f32 = t_mean_f32, .exchange = t_exchange};
  ebm_backend_options o = {.kind = EBM_BACKEND_CPU, .threads = 1};
  ebm_backend *be = NULL;
  ebm_trainer *tr = NULL;
  j->rc = -1;
  if (ebm_backend_create(&be, &o, j->err, sizeof j->err) != 0) {
    break_barrier(j->s);
    return;
  }
  ebm_train_config cfg = j->cfg;
  cfg.batch /= j->s->n;
  if (ebm_trainer_create_comm(&tr, be, j->resume ? NULL : &cfg, j->resume, NULL, 0, &comm, j->err,
                              sizeof j->err) != 0)
    goto out;
  ebm_train_stats st;
  for (int i = 0; i < j->steps; i++)
    if (ebm_trainer_step(tr, &st, j->err, sizeof j->err) != EBM_TRAIN_OK) goto out;
  if (j->save && ebm_trainer_save_checkpoint(tr, j->save, j->err, sizeof j->err) != 0) goto out;
  ebm_net *net = ebm_trainer_net(tr);
  j->nparams = ebm_net_param_count(net);
  const ebm_train_config *c = ebm_trainer_config(tr);
  j->params = malloc(j->nparams * sizeof(float));
  float *u = malloc((ebm_net_sn_u_count(net) + 1) * sizeof(float));
  j->neg = malloc((size_t)c->batch * 3 * c->net.resolution * c->net.resolution * sizeof(float));
  if (j->params && u && j->neg && ebm_net_get_params(net, j->params, u) == 0 &&
      ebm_trainer_negatives(tr, j->neg) == 0)
    j->rc = 0;
  free(u);
out:
  if (j->rc != 0) {
    fprintf(stderr, "rank %d of %d: %s\n", j->rank, j->s->n, j->err);
    break_barrier(j->s); /* the others stop at their next collective instead of waiting */
  }
  ebm_trainer_destroy(tr);
  ebm_backend_destroy(be);
}

static void *rank_main(void *arg) {
  job *j = arg;
  pthread_mutex_lock(&g_turn);
  rank_body(j);
  pthread_mutex_unlock(&g_turn);
  return NULL;
}

/* n ranks (threads) run the job; jobs[0..n) hold the results. 0 when every rank succeeded. */
static int run_ranks(job *jobs, int n, const ebm_train_config *cfg, const char *resume,
                     const char *save, int steps) {
  shared_comm s = {.n = n, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  pthread_t th[MAX_RANKS];
  for (int r = 0; r < n; r++) {
    jobs[r] = (job){.s = &s, .rank = r, .cfg = *cfg, .resume = resume, .save = save, .steps = steps};
    pthread_create(&th[r], NULL, rank_main, &jobs[r]);
  }
  int bad = 0;
  for (int r = 0; r < n; r++) {
    pthread_join(th[r], NULL);
    bad |= jobs[r].rc != 0;
  }
  return bad ? -1 : 0;
}

static void free_jobs(job *jobs, int n) {
  for (int r = 0; r < n; r++) free(jobs[r].params), free(jobs[r].neg);
}

static ebm_train_config tiny(int reservoir, int buffer) {
  ebm_train_config cfg;
  char err[256];
  if (ebm_train_config_default(&cfg, "color", "general", "tiny", 8, err, sizeof err) != 0) {
    fprintf(stderr, "config: %s\n", err);
    exit(1);
  }
  cfg.batch = 6; /* global */
  cfg.langevin_steps = 4;
  cfg.step_lr = 10.0f;
  cfg.noise = 0.005f;
  cfg.buffer_size = buffer;
  cfg.reservoir = reservoir;
  cfg.lr = 1e-3f;
  cfg.seed = 11;
  return cfg;
}

/* The replay.images tensor of a checkpoint (packed floats), malloc'd; NULL on failure. */
static ebm_backend *g_be; /* for reading checkpoints back */
static float *replay_of(const char *path, size_t *n) {
  ebm_model_extra q = {"replay.images", NULL, 0, 1, 0};
  ebm_net *net = NULL;
  char err[512];
  if (ebm_model_load(path, g_be, 1, &net, NULL, &q, 1, err, sizeof err) != 0) return NULL;
  ebm_net_destroy(net);
  float *v = malloc(q.numel * sizeof(float));
  ebm_model_extra e = {"replay.images", v, q.numel, 1, 0};
  if (!v || ebm_model_load(path, g_be, 1, &net, NULL, &e, 1, err, sizeof err) != 0) {
    free(v);
    return NULL;
  }
  ebm_net_destroy(net);
  *n = q.numel;
  return v;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_ranks_match_one_process(const char *dir) {
  const int ns[] = {2, 3};
  const int buffers[] = {5, 64};
  for (int res = 0; res < 2; res++)
    for (int bi = 0; bi < 2; bi++) {
      ebm_train_config cfg = tiny(res, buffers[bi]);
      char one[600], many[600], label[128];
      snprintf(one, sizeof one, "%s/one.ckpt.safetensors", dir);
      job ref[1];
      TU_CHECK(run_ranks(ref, 1, &cfg, NULL, one, 6) == 0, "one process: %s", ref[0].err);
      size_t nr1 = 0, nrn = 0;
      float *r1 = replay_of(one, &nr1);
      for (int k = 0; k < 2; k++) {
        const int n = ns[k], B = cfg.batch / n;
        job jobs[MAX_RANKS];
        snprintf(many, sizeof many, "%s/many.ckpt.safetensors", dir);
        if (run_ranks(jobs, n, &cfg, NULL, many, 6) != 0) {
          for (int r = 0; r < n; r++)
            TU_CHECK(jobs[r].rc == 0, "%d ranks, rank %d: %s", n, r, jobs[r].err);
          free_jobs(jobs, n);
          continue;
        }
        snprintf(label, sizeof label, "%s buffer %d, %d ranks: weights", res ? "reservoir" : "ring",
                 buffers[bi], n);
        TU_CHECK(tu_compare(label, jobs[0].params, ref[0].params, ref[0].nparams, 1e-5, 0), "%s", label);
        for (int r = 1; r < n; r++)
          TU_CHECK(!memcmp(jobs[r].params, jobs[0].params, ref[0].nparams * sizeof(float)),
                   "%s: rank %d's weights are not rank 0's bits", label, r);
        const size_t npix = 3 * 8 * 8;
        for (int r = 0; r < n; r++) {
          snprintf(label, sizeof label, "%s buffer %d, %d ranks: rank %d's negatives",
                   res ? "reservoir" : "ring", buffers[bi], n, r);
          TU_CHECK(tu_compare(label, jobs[r].neg, ref[0].neg + (size_t)r * B * npix, (size_t)B * npix,
                              1e-5, 0), "%s", label);
        }
        float *rn = replay_of(many, &nrn);
        TU_CHECK(r1 && rn && nr1 == nrn && !memcmp(r1, rn, nr1 * sizeof(float)),
                 "%s buffer %d, %d ranks: the gathered replay buffer is not the one process's",
                 res ? "reservoir" : "ring", buffers[bi], n);
        free(rn);
        free_jobs(jobs, n);
      }
      free(r1);
      free_jobs(ref, 1);
    }
}

static void test_resume(const char *dir) {
  ebm_train_config cfg = tiny(0, 5);
  char half[600], full[600], again[600];
  snprintf(half, sizeof half, "%s/half.ckpt.safetensors", dir);
  snprintf(full, sizeof full, "%s/full.ckpt.safetensors", dir);
  snprintf(again, sizeof again, "%s/again.ckpt.safetensors", dir);
  job a[2], b[2], c[1], d[4];
  TU_CHECK(run_ranks(a, 2, &cfg, NULL, full, 6) == 0, "6 steps: %s", a[0].err);
  TU_CHECK(run_ranks(b, 2, &cfg, NULL, half, 3) == 0, "3 steps: %s", b[0].err);
  free_jobs(b, 2);
  TU_CHECK(run_ranks(b, 2, &cfg, half, again, 3) == 0, "resumed on 2 ranks: %s", b[0].err);
  if (a[0].params && b[0].params) {
    TU_CHECK(!memcmp(a[0].params, b[0].params, a[0].nparams * sizeof(float)),
             "3 + 3 iterations on 2 ranks are not the bits of 6");
    TU_CHECK(!memcmp(a[1].neg, b[1].neg, 3 * 3 * 8 * 8 * sizeof(float)),
             "rank 1's negatives after resuming differ");
  }
  size_t n1 = 0, n2 = 0;
  float *r1 = replay_of(full, &n1), *r2 = replay_of(again, &n2);
  TU_CHECK(r1 && r2 && n1 == n2 && !memcmp(r1, r2, n1 * sizeof(float)), "resumed replay buffer differs");
  free(r1), free(r2);
  /* another rank count: 1 re-shards (and trains on), 4 does not divide the batch of 6 */
  TU_CHECK(run_ranks(c, 1, &cfg, half, NULL, 3) == 0, "resumed on 1 rank: %s", c[0].err);
  if (a[0].params && c[0].params)
    TU_CHECK(tu_compare("2-rank checkpoint resumed on 1 rank", c[0].params, a[0].params,
                        a[0].nparams, 1e-5, 0), "re-sharded resume strays");
  TU_CHECK(run_ranks(d, 4, &cfg, half, NULL, 1) != 0, "a batch of 6 resumed on 4 ranks");
  TU_CHECK(strstr(d[0].err, "on 4 ranks: its batch of 6 does not split evenly") != NULL,
           "refusal: %s", d[0].err);
  free_jobs(a, 2), free_jobs(b, 2), free_jobs(c, 1), free_jobs(d, 4);
}

/* The shard helpers alone: 7 slots of 2 bytes over 3 ranks, gathered back in slot order. */
typedef struct gather_job {
  shared_comm *s;
  int rank;
  uint8_t full[14];
  int rc;
} gather_job;
static void *gather_main(void *arg) {
  gather_job *g = arg;
  pthread_mutex_lock(&g_turn);
  rank_ctx rc = {g->s, g->rank};
  ebm_train_comm comm = {.rank = g->rank, .size = g->s->n, .ctx = &rc, .sum_f64 = t_sum_f64,
                         .mean_f32 = t_mean_f32, .exchange = t_exchange};
  uint8_t all[14], mine[14];
  for (int i = 0; i < 14; i++) all[i] = (uint8_t)(100 + i);
  shard_take(mine, all, 2, 7, g->rank, 3);
  g->rc = shard_gather(&comm, mine, 2, 7, g->rank == 0 ? g->full : NULL);
  pthread_mutex_unlock(&g_turn);
  return NULL;
}
static void test_shard_gather(void) {
  TU_CHECK(shard_slots(7, 0, 3) == 3 && shard_slots(7, 1, 3) == 2 && shard_slots(7, 2, 3) == 2 &&
               shard_slots(2, 2, 3) == 0,
           "shard sizes");
  shared_comm s = {.n = 3, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  gather_job g[3];
  pthread_t th[3];
  for (int r = 0; r < 3; r++) {
    g[r] = (gather_job){.s = &s, .rank = r};
    pthread_create(&th[r], NULL, gather_main, &g[r]);
  }
  for (int r = 0; r < 3; r++) pthread_join(th[r], NULL);
  int ok = g[0].rc == 0 && g[1].rc == 0 && g[2].rc == 0;
  for (int i = 0; i < 14 && ok; i++) ok = g[0].full[i] == 100 + i;
  TU_CHECK(ok, "7 slots over 3 ranks did not gather back in slot order");
}

int main(void) {
  char dir[] = "/tmp/vkebm_test_train_dist_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  g_be = tu_cpu_backend();
  test_shard_gather();
  test_ranks_match_one_process(dir);
  test_resume(dir);
  const char *names[] = {"one", "many", "half", "full", "again"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s.ckpt.safetensors", dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
  ebm_backend_destroy(g_be);
  return tu_finish("test_train_dist");
}
