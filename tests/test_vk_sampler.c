/* test_vk_sampler.c: the sampler ops (shaders/langevin_*.comp) against their CPU twins
 * (src/backend/cpu_sampler.c via the cpu backend) on awkward sizes (1 and 7 chains, 3, 13 and
 * 1000 values, 1 and 3 rows per group) with fixed seeds, printing the worst element; every tensor
 * at an unaligned offset between guard floats; every vulkan run repeated for the same bits
 * (tu_check_op, testutil.h). Then whole compositions sampled with each sampler on both backends: same seed, close images (the
 * normals' transcendental functions may differ in the last ulps; MALA's decisions match). Last,
 * a composed step (AND/NOT, soft OR, mixture OR) makes no host round trip on vulkan (counted with
 * ebm_backend_transfer_stats). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vkebm/compose.h"
#include "vkebm/concept.h"
#include "vkebm/sampler.h"

/* ---- the sampler ops as tu_op_fn (s = shape arguments) --------------------------------------- */

static void op_qe(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_quadratic_energy(be, t[0], t[1], t[2], t[3], s[0], s[1], s[2]); }
static void op_qe_b(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_quadratic_energy_backward(be, t[0], t[1], t[2], t[3], t[4], s[0], s[1], s[2]); }
static void op_lu(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_langevin_update(be, t[0], t[1], s[0], s[1], 1234u, 17u, 0.3f, 0.05f, 0.0f, 1.0f); }
static void op_lu_noise(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_langevin_update(be, t[0], EBM_NOREF, s[0], s[1], 99u, 3u, 0.0f, 0.5f, 0.0f, 0.0f); }
static void op_lu_at(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_langevin_update_at(be, t[0], t[1], s[0], s[1], 5u, 1234u, 17u, 0.3f, 0.05f, 0.0f, 1.0f); }
static void op_mp(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_mala_propose(be, t[0], t[1], t[2], t[3], s[0], s[1], 7u, 5u); }
static void op_lq(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_mala_log_q(be, t[0], t[1], t[2], t[3], t[4], s[0], s[1]); }
static void op_sel(ebm_backend *be, const ebm_ref *t, const int *s) { ebm_chain_select(be, t[0], t[1], t[2], s[0], s[1]); }

#define CHECK(label, fn, shape, atol, rtol, ...) \
  TU_CHECK_OP(cpu, vk, label, fn, shape, atol, rtol, __VA_ARGS__)
#define T(name, n, out) {name, (size_t)(n), out, -1.0f, 1.0f}
#define TR(name, n, out, lo, hi) {name, (size_t)(n), out, lo, hi}

static void ops(ebm_backend *cpu, ebm_backend *vk) {
  const int chains[] = {1, 7}, cols[] = {3, 13, 1000}, rpg[] = {1, 3};
  for (int a = 0; a < 2; a++)
    for (int c = 0; c < 3; c++) {
      int B = chains[a], N = cols[c];
      size_t BN = (size_t)B * N;
      char l[96];
      for (int r = 0; r < 2; r++) {
        int R = rpg[r], n = B * R, G = B; /* n rows in B groups of R */
        size_t nN = (size_t)n * N;
        const int s[] = {n, N, R};
        snprintf(l, sizeof l, "quadratic_energy rows=%d N=%d R=%d", n, N, R);
        CHECK(l, op_qe, s, 1e-5, 1e-5, T("e", n, 1), T("x", nN, 0), T("mu", (size_t)G * N, 0),
              TR("prec", (size_t)G * N, 0, 0.0f, 5.0f));
        snprintf(l, sizeof l, "quadratic_energy_backward rows=%d N=%d R=%d", n, N, R);
        CHECK(l, op_qe_b, s, 1e-6, 1e-6, T("dx", nN, 1), T("dE", n, 0), T("x", nN, 0),
              T("mu", (size_t)G * N, 0), TR("prec", (size_t)G * N, 0, 0.0f, 5.0f));
      }
      const int s[] = {B, N};
      snprintf(l, sizeof l, "langevin_update B=%d N=%d", B, N);
      CHECK(l, op_lu, s, 1e-5, 1e-5, TR("x", BN, 1, -0.5f, 1.5f), T("grad", BN, 0));
      snprintf(l, sizeof l, "langevin_update_at chain0=5 B=%d N=%d", B, N);
      CHECK(l, op_lu_at, s, 1e-5, 1e-5, TR("x", BN, 1, -0.5f, 1.5f), T("grad", BN, 0));
      snprintf(l, sizeof l, "langevin_update noise only B=%d N=%d", B, N);
      CHECK(l, op_lu_noise, s, 1e-5, 1e-5, T("x", BN, 1));
      snprintf(l, sizeof l, "mala_propose B=%d N=%d", B, N);
      CHECK(l, op_mp, s, 1e-5, 1e-5, T("xp", BN, 1), T("x", BN, 0), T("grad", BN, 0),
            TR("tau", B, 0, 0.001f, 0.1f));
      snprintf(l, sizeof l, "mala_log_q B=%d N=%d", B, N);
      CHECK(l, op_lq, s, 1e-4, 1e-5, T("out", B, 1), T("to", BN, 0), T("from", BN, 0),
            T("grad_from", BN, 0), TR("tau", B, 0, 0.001f, 0.1f));
      snprintf(l, sizeof l, "chain_select B=%d N=%d", B, N);
      CHECK(l, op_sel, s, 0, 0, T("x", BN, 1), T("src", BN, 0), TR("mask", B, 0, 0.0f, 1.0f));
    }
}

/* ---- whole compositions on both backends ---------------------------------------------------- */

/* src over the analytic color and position concepts at 8x8, for B chains (NULL on failure) */
static ebm_composition *builtin_composition(ebm_backend *be, ebm_concept_set *set, const char *src,
                                            int B) {
  char err[256];
  const char *names[] = {"color", "position"};
  for (int i = 0; i < 2; i++) {
    ebm_concept *c = ebm_concept_create_builtin(be, names[i], 8, 100.0f, 4, err, sizeof err);
    TU_CHECK(c && !ebm_concept_set_add(set, c, 1, err, sizeof err), "%s", err);
  }
  expr_error e;
  expr_node *t = expr_parse(src, &e);
  ebm_composition *comp = t ? ebm_composition_create(be, t, set, B, &e) : NULL;
  TU_CHECK(comp, "%s: %s", src, e.msg);
  expr_free(t);
  return comp;
}

static void run_composition(ebm_backend *be, ebm_sampler_kind kind, float *out, int B,
                            ebm_sampler_stats *st) {
  ebm_concept_set set = {0};
  char err[256];
  ebm_composition *comp = builtin_composition(
      be, &set, "(color=red AND pos=(0.3,-0.5)) OR[1] (color=blue AND pos=(-0.5,0.5)) AND pos=(0,0)",
      B);
  if (comp) {
    int N = ebm_composition_image_size(comp);
    float *x = malloc(sizeof(float) * B * N);
    ebm_sampler_init_uniform(x, B, N, 42);
    ebm_buffer *xb = ebm_alloc(be, (size_t)B * N);
    ebm_upload(be, ebm_ref_of(xb), x, (size_t)B * N);
    ebm_sampler_config cfg;
    ebm_sampler_defaults(&cfg, kind);
    cfg.steps = 30;
    cfg.seed = 42;
    cfg.step_size = kind == EBM_SAMPLER_PAPER ? 1e-3f : 5e-4f;
    TU_CHECK(!ebm_sample(comp, ebm_ref_of(xb), &cfg, NULL, NULL, st, err, sizeof err), "%s", err);
    ebm_download(be, out, ebm_ref_of(xb), (size_t)B * N);
    ebm_free(be, xb);
    free(x);
    ebm_composition_destroy(comp);
  }
  ebm_concept_set_clear(&set);
}

static void compositions(ebm_backend *cpu, ebm_backend *vk) {
  enum { B = 5, N = 3 * 8 * 8 };
  for (int k = 0; k < 3; k++) {
    static float xc[B * N], xv[B * N], xv2[B * N];
    ebm_sampler_stats sc, sv, sv2;
    run_composition(cpu, (ebm_sampler_kind)k, xc, B, &sc);
    run_composition(vk, (ebm_sampler_kind)k, xv, B, &sv);
    run_composition(vk, (ebm_sampler_kind)k, xv2, B, &sv2);
    char l[64];
    snprintf(l, sizeof l, "%s sampler, 30 steps, vulkan vs cpu", ebm_sampler_name((ebm_sampler_kind)k));
    tu_compare(l, xv, xc, B * N, 2e-3, 1e-3);
    TU_CHECK(!memcmp(xv, xv2, sizeof xv), "%s: same seed, same bits on vulkan", l);
    if (k == EBM_SAMPLER_MALA)
      TU_CHECK(sc.accepted == sv.accepted, "mala decisions: cpu %ld accepted, vulkan %ld",
               sc.accepted, sv.accepted);
  }
}

/* ---- a composed step stays on the device ----------------------------------------------------
 * Ten paper-sampler steps of a composition after one to warm up (the labels and constant
 * coefficients go up once): no upload, download or sync, and no queue submission (each would be
 * a host round trip stalling the queue between the models' forward and backward passes). */
static void no_round_trips(ebm_backend *be, const char *src, int or_mixture) {
  enum { B = 4, STEPS = 10 };
  ebm_concept_set set = {0};
  char err[256];
  ebm_composition *comp = builtin_composition(be, &set, src, B);
  if (comp) {
    ebm_composition_set_or_mixture(comp, or_mixture, 9);
    int N = ebm_composition_image_size(comp);
    float *x = malloc(sizeof(float) * B * N);
    ebm_sampler_init_uniform(x, B, N, 42);
    ebm_buffer *xb = ebm_alloc(be, (size_t)B * N), *gb = ebm_alloc(be, (size_t)B * N);
    ebm_upload(be, ebm_ref_of(xb), x, (size_t)B * N);
    ebm_sampler_config cfg;
    ebm_sampler_defaults(&cfg, EBM_SAMPLER_PAPER);
    cfg.step_size = 1e-3f;
    int rc = ebm_sampler_step_composition(comp, ebm_ref_of(xb), ebm_ref_of(gb), &cfg, 1e-3f, 0,
                                          err, sizeof err);
    TU_CHECK(rc == 0 && ebm_sync(be) == 0, "%s: warm-up step: %s", src, err);
    ebm_transfer_stats a = ebm_backend_transfer_stats(be);
    for (uint32_t k = 1; k <= STEPS && rc == 0; k++)
      rc = ebm_sampler_step_composition(comp, ebm_ref_of(xb), ebm_ref_of(gb), &cfg, 1e-3f, k, err,
                                        sizeof err);
    ebm_transfer_stats b = ebm_backend_transfer_stats(be);
    TU_CHECK(rc == 0 && ebm_sync(be) == 0, "%s: steps: %s", src, err);
    printf("  %-60s%s: per %d steps %llu uploads, %llu downloads, %llu syncs, %llu submits\n",
           src, or_mixture ? " (OR as a mixture)" : "", STEPS, (unsigned long long)(b.uploads - a.uploads),
           (unsigned long long)(b.downloads - a.downloads), (unsigned long long)(b.syncs - a.syncs),
           (unsigned long long)(b.submits - a.submits));
    TU_CHECK(b.uploads == a.uploads && b.downloads == a.downloads && b.syncs == a.syncs &&
                 b.submits == a.submits,
             "%s: a composed step went to the host", src);
    /* what the steps computed is still there to read */
    TU_CHECK(ebm_composition_term_energies(comp) != NULL, "%s: term energies", src);
    ebm_free(be, xb);
    ebm_free(be, gb);
    free(x);
    ebm_composition_destroy(comp);
  }
  ebm_concept_set_clear(&set);
}

int main(void) {
  ebm_backend *vk = tu_vulkan_backend();
  ebm_backend *cpu = tu_cpu_backend();
  ops(cpu, vk);
  compositions(cpu, vk);
  const char *and_not = "color=red AND NOT[0.5] pos=(0.3,-0.5) AND 2*pos=(0,0)";
  const char *with_or =
      "(color=red AND pos=(0.3,-0.5)) OR[1] (color=blue AND 0.5*pos=(-0.5,0.5)) AND pos=(0,0)";
  no_round_trips(vk, and_not, 0);
  no_round_trips(vk, with_or, 0); /* soft OR: the tree on the device */
  no_round_trips(vk, with_or, 1); /* mixture: constants again */
  no_round_trips(cpu, and_not, 0);
  ebm_backend_destroy(cpu);
  tu_backend_done(vk);
  return tu_finish("test_vk_sampler");
}
