/* compose.h: the energy of a concept expression and its gradient (docs/recipe.md §3).
 *
 * Owns: binding a parsed expression (expr.h) to concept models (concept.h), grouping the terms
 * that share a model into one batched evaluation, and the algebra:
 *   term  E_k(x) = E(x | c_k) of its model
 *   AND   E = sum_i E_i
 *   OR    E = -T logsumexp_i(-E_i / T),   dE = sum_i softmax_i(-E_/T) dE_i
 *         (or, as a mixture, each chain's drawn side: ebm_composition_set_or_mixture)
 *   NOT   E = -alpha E_child
 *   w*e   E = w E_e
 * The gradient is each model's backward pass with the coefficients dE/dE_k per chain as its dE.
 * A sampler step stays on the device: without a soft OR (AND, NOT, weights, mixture ORs) the
 * coefficients are constants, computed on the host once per scale and uploaded once; with one,
 * the tree runs on the device (the backend's softmin ops, in float). Energies come to the host
 * only when asked for (ebm_composition_eval's energy, ebm_composition_term_energies); then the
 * tree is evaluated per chain in double precision there.
 */
#ifndef VKEBM_COMPOSE_H
#define VKEBM_COMPOSE_H

#include <stddef.h>

#include "vkebm/backend.h"
#include "vkebm/concept.h"
#include "vkebm/expr.h"

typedef struct ebm_composition ebm_composition;

/* Binds every term of tree to a model of set and allocates for `chains` chains. Errors (an
 * unknown concept, a bad value, models of different image sizes) carry the term's position in
 * err->pos and list what is valid. The tree is copied; the set must outlive the composition. */
ebm_composition *ebm_composition_create(ebm_backend *be, const expr_node *tree,
                                        const ebm_concept_set *set, int chains, expr_error *err);
void ebm_composition_destroy(ebm_composition *c);

ebm_backend *ebm_composition_backend(const ebm_composition *c);
int ebm_composition_chains(const ebm_composition *c);
int ebm_composition_image_size(const ebm_composition *c); /* N = C*H*W */
void ebm_composition_image_shape(const ebm_composition *c, int *C, int *H, int *W);
int ebm_composition_num_terms(const ebm_composition *c);
/* The k-th term (in reading order) as text, e.g. "color=red", and its model. */
const char *ebm_composition_term_text(const ebm_composition *c, int k);
const ebm_concept *ebm_composition_term_model(const ebm_composition *c, int k);

/* Composed energy of x[B, N] (device): energy[B] on the host (optional, NULL to skip: then
 * nothing waits for the device); grad [B, N] (device, overwritten) when grad.buf != NULL, scaled
 * by `scale` (energies too): the sampler's inverse temperature. With energy, a composed energy
 * that is not finite is an error. 0 or -1 with a message. */
int ebm_composition_eval(ebm_composition *c, ebm_ref x, double *energy, ebm_ref grad,
                         double scale, char *err, size_t errlen);
/* Per-term energies of the last evaluation, unscaled: [num_terms, B] host floats (downloaded
 * here when that evaluation did not fetch them; NULL when the download fails). */
const float *ebm_composition_term_energies(ebm_composition *c);

/* The composed energy evaluated on the host from given term energies of chain `chain`: the
 * tree's value, and d value / d term_k into coef[num_terms] (optional). With the OR mixture on,
 * each OR takes the side that chain samples (chain < 0: the soft OR). */
double ebm_composition_tree_value_chain(const ebm_composition *c, const double *term_energy,
                                        double *coef, int chain);

/* Exact mixture sampling of disjunctions: with on, each chain draws one side of every OR
 * uniformly (a function of seed, chain and the OR's place in reading order) and samples that
 * side's energy alone, so A OR B gives a mixture of A's and B's samples whatever the models'
 * energy offsets (the soft -T logsumexp puts every chain on the side whose energy is lower at
 * the start when the offsets differ). Off (the default): the paper's soft OR. */
void ebm_composition_set_or_mixture(ebm_composition *c, int on, uint32_t seed);

/* Writes the parsed tree, one node a line, with each term's model, and the energy formula the
 * tree stands for. */
void ebm_composition_explain(const ebm_composition *c, char *out, size_t len);

#endif
