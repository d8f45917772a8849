/* scene_shade.h: the scene renderer's per-pixel code, compiled by both C (src/scene/render.c)
 * and GLSL (shaders/scene_render.comp), so the CPU twin and the shader trace the same rays
 * with the same arithmetic.
 *
 * Owns: the packed scene layout (VKEBM_SCENE_FLOATS floats per scene; src/scene/scene.c
 * writes it, nothing else reads it) and the analytic ray caster: a camera ray per sub-sample,
 * intersection with the floor plane y = 0 and with each object (box, sphere, capped cylinder,
 * cone), Lambert shading from one directional light with a hemispheric ambient term, and a
 * hard shadow from a shadow ray toward the light. Four rotated-grid sub-samples per pixel
 * (fixed offsets: deterministic anti-aliasing).
 *
 * World: y is up; the floor is the plane y = 0; every object stands on it. An object at
 * ground point (X, Z) with half-extent s occupies, in its own frame (rotated by yaw about
 * the vertical axis through (X, 0, Z)):
 *   cube      |x|,|z| <= s, 0 <= y <= 2s
 *   sphere    centre (0, s, 0), radius s
 *   cylinder  x^2 + z^2 <= s^2, 0 <= y <= 2s
 *   cone      x^2 + z^2 <= (k (2s - y))^2, k = 1/2 (base radius s, apex at y = 2s)
 *
 * Camera: the host builds view and projection with cglm and stores inverse(P V); a pixel's ray
 * goes from the eye through inverse(P V) (u, v, 1, 1) with u, v its NDC coordinates (row 0 at
 * the top, v = +1).
 *
 * Access to the packed floats: C passes `const f32 *scn` (SCN_DECL / SCN_PASS); GLSL reads a
 * storage buffer `scenes[]` at a global offset `scn_base` that the shader sets before calling.
 *
 * C and the shader agree to within rounding of sqrt/division: a sub-sample whose ray grazes a
 * silhouette or a shadow edge can land on the other side, so compare images with a tolerance
 * (tests/test_vk_scene.c states it), not bit for bit. On one device, same floats -> same bits.
 */
#ifndef VKEBM_SCENE_SHADE_H
#define VKEBM_SCENE_SHADE_H

#include "vkebm/shared.h"

/* ---- packed scene layout (floats) -------------------------------------------------------- */
#define VKEBM_SCENE_FLOATS 96u
#define SCN_INV_VP 0u      /* 16: inverse(P V), column-major (cglm mat4 m[col][row]) */
#define SCN_EYE 16u        /* 3: camera position */
#define SCN_NOBJ 19u       /* object count 0..5 */
#define SCN_LIGHT_DIR 20u  /* 3: unit vector toward the light */
#define SCN_AMBIENT 23u    /* ambient fraction */
#define SCN_LIGHT_RGB 24u  /* 3: light colour times intensity */
#define SCN_FLOOR_RGB 27u  /* 3: floor albedo (neutral grey) */
#define SCN_SKY_RGB 30u    /* 1: sky grey level (only seen if the horizon is in view) */
#define SCN_OBJ0 32u       /* first object */
#define SCN_OBJ_STRIDE 12u /* floats per object: */
#define SCN_O_SHAPE 0u     /*   shape id (0 cube, 1 sphere, 2 cylinder, 3 cone) */
#define SCN_O_SIZE 1u      /*   half-extent s */
#define SCN_O_X 2u         /*   world X of the ground point */
#define SCN_O_Z 3u         /*   world Z of the ground point */
#define SCN_O_COS 4u       /*   cos(yaw) */
#define SCN_O_SIN 5u       /*   sin(yaw) */
#define SCN_O_RGB 6u       /*   3: albedo */
#define SCN_O_COLOUR 9u    /*   palette index (label; not used for shading) */
#define SCN_O_LABEL_X 10u  /*   label position x in [-1, 1] */
#define SCN_O_LABEL_Y 11u  /*   label position y in [-1, 1] */
#define SCN_MAX_OBJECTS 5u

#define SCN_SHAPE_CUBE 0u
#define SCN_SHAPE_SPHERE 1u
#define SCN_SHAPE_CYLINDER 2u
#define SCN_SHAPE_CONE 3u

#define SCN_MISS 1.0e30f
#define SCN_ID_FLOOR (-1)
#define SCN_ID_SKY (-2)

/* ---- C / GLSL glue ----------------------------------------------------------------------- */
#ifdef VULKAN
#define SCN(i) scenes[scn_base + (i)]
#define SCN_DECL
#define SCN_PASS
#define SCN_U32(x) uint(x)
#define SCN_I32(x) int(x)
#define scn_v3 vec3
#define SCN_ABS abs
#define SCN_MAX max
#define SCN_MIN min
#define SCN_CLAMP01(x) clamp((x), 0.0f, 1.0f)
scn_v3 v3(f32 x, f32 y, f32 z) { return vec3(x, y, z); }
scn_v3 v3_add(scn_v3 a, scn_v3 b) { return a + b; }
scn_v3 v3_sub(scn_v3 a, scn_v3 b) { return a - b; }
scn_v3 v3_mul(scn_v3 a, scn_v3 b) { return a * b; }
scn_v3 v3_scale(scn_v3 a, f32 s) { return a * s; }
f32 v3_dot(scn_v3 a, scn_v3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
struct scn_hit {
  f32 t;
  scn_v3 n; /* world-space unit normal */
  i32 id;   /* object index, SCN_ID_FLOOR or SCN_ID_SKY */
};
#else
#define SCN(i) scn[(i)]
#define SCN_DECL const f32 *scn,
#define SCN_PASS scn,
#define SCN_U32(x) ((u32)(x))
#define SCN_I32(x) ((i32)(x))
#define SCN_ABS fabsf
#define SCN_MAX fmaxf
#define SCN_MIN fminf
#define SCN_CLAMP01(x) fminf(fmaxf((x), 0.0f), 1.0f)
typedef struct scn_v3 {
  f32 x, y, z;
} scn_v3;
VKEBM_FN scn_v3 v3(f32 x, f32 y, f32 z) {
  scn_v3 r = {x, y, z};
  return r;
}
VKEBM_FN scn_v3 v3_add(scn_v3 a, scn_v3 b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
VKEBM_FN scn_v3 v3_sub(scn_v3 a, scn_v3 b) { return v3(a.x - b.x, a.y - b.y, a.z - b.z); }
VKEBM_FN scn_v3 v3_mul(scn_v3 a, scn_v3 b) { return v3(a.x * b.x, a.y * b.y, a.z * b.z); }
VKEBM_FN scn_v3 v3_scale(scn_v3 a, f32 s) { return v3(a.x * s, a.y * s, a.z * s); }
VKEBM_FN f32 v3_dot(scn_v3 a, scn_v3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
typedef struct scn_hit {
  f32 t;
  scn_v3 n;
  i32 id;
} scn_hit;
#endif

VKEBM_FN scn_v3 v3_normalize(scn_v3 a) { return v3_scale(a, 1.0f / VKEBM_SQRT(v3_dot(a, a))); }

VKEBM_FN scn_hit scn_hit_make(f32 t, scn_v3 n, i32 id) {
  scn_hit h;
  h.t = t;
  h.n = n;
  h.id = id;
  return h;
}

/* Keeps a ray component away from 0 so slab/plane divisions stay finite in GLSL too. */
VKEBM_FN f32 scn_nonzero(f32 d) {
  if (SCN_ABS(d) < 1.0e-7f) return d < 0.0f ? -1.0e-7f : 1.0e-7f;
  return d;
}

/* ---- ray vs one shape, in the object's frame (ground point at the origin) ----------------
 * Each returns the nearest t in (tmin, SCN_MISS) with the local normal, or t = SCN_MISS. */

VKEBM_FN scn_hit scn_hit_box(scn_v3 o, scn_v3 d, f32 s, f32 tmin) {
  /* slabs: |x| <= s, 0 <= y <= 2s, |z| <= s */
  f32 ix = 1.0f / scn_nonzero(d.x), iy = 1.0f / scn_nonzero(d.y), iz = 1.0f / scn_nonzero(d.z);
  f32 tx0 = (-s - o.x) * ix, tx1 = (s - o.x) * ix;
  f32 ty0 = (0.0f - o.y) * iy, ty1 = (2.0f * s - o.y) * iy;
  f32 tz0 = (-s - o.z) * iz, tz1 = (s - o.z) * iz;
  f32 nx = SCN_MIN(tx0, tx1), fx = SCN_MAX(tx0, tx1);
  f32 ny = SCN_MIN(ty0, ty1), fy = SCN_MAX(ty0, ty1);
  f32 nz = SCN_MIN(tz0, tz1), fz = SCN_MAX(tz0, tz1);
  f32 tnear = SCN_MAX(nx, SCN_MAX(ny, nz));
  f32 tfar = SCN_MIN(fx, SCN_MIN(fy, fz));
  if (tnear > tfar || tnear <= tmin) return scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  scn_v3 n;
  if (tnear == nx) n = v3(d.x > 0.0f ? -1.0f : 1.0f, 0.0f, 0.0f);
  else if (tnear == ny) n = v3(0.0f, d.y > 0.0f ? -1.0f : 1.0f, 0.0f);
  else n = v3(0.0f, 0.0f, d.z > 0.0f ? -1.0f : 1.0f);
  return scn_hit_make(tnear, n, 0);
}

VKEBM_FN scn_hit scn_hit_sphere(scn_v3 o, scn_v3 d, f32 s, f32 tmin) {
  scn_v3 oc = v3_sub(o, v3(0.0f, s, 0.0f));
  f32 b = v3_dot(oc, d);
  f32 c = v3_dot(oc, oc) - s * s;
  f32 disc = b * b - c; /* |d| = 1 */
  if (disc < 0.0f) return scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  f32 t = -b - VKEBM_SQRT(disc);
  if (t <= tmin) return scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  scn_v3 p = v3_add(oc, v3_scale(d, t));
  return scn_hit_make(t, v3_scale(p, 1.0f / s), 0);
}

/* A horizontal disc x^2 + z^2 <= r^2 at height y, facing ny (+1 up, -1 down). */
VKEBM_FN scn_hit scn_hit_disc(scn_v3 o, scn_v3 d, f32 y, f32 r, f32 ny, f32 tmin) {
  f32 t = (y - o.y) / scn_nonzero(d.y);
  f32 x = o.x + d.x * t, z = o.z + d.z * t;
  if (t <= tmin || x * x + z * z > r * r) return scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  return scn_hit_make(t, v3(0.0f, ny, 0.0f), 0);
}

VKEBM_FN scn_hit scn_nearer(scn_hit a, scn_hit b) { return b.t < a.t ? b : a; }

VKEBM_FN scn_hit scn_hit_cylinder(scn_v3 o, scn_v3 d, f32 s, f32 tmin) {
  scn_hit best = scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  f32 a = d.x * d.x + d.z * d.z;
  if (a > 1.0e-12f) {
    f32 b = o.x * d.x + o.z * d.z;
    f32 c = o.x * o.x + o.z * o.z - s * s;
    f32 disc = b * b - a * c;
    if (disc >= 0.0f) {
      f32 t = (-b - VKEBM_SQRT(disc)) / a;
      f32 y = o.y + d.y * t;
      if (t > tmin && y >= 0.0f && y <= 2.0f * s)
        best = scn_hit_make(t, v3((o.x + d.x * t) / s, 0.0f, (o.z + d.z * t) / s), 0);
    }
  }
  best = scn_nearer(best, scn_hit_disc(o, d, 2.0f * s, s, 1.0f, tmin));
  best = scn_nearer(best, scn_hit_disc(o, d, 0.0f, s, -1.0f, tmin));
  return best;
}

VKEBM_FN scn_hit scn_hit_cone(scn_v3 o, scn_v3 d, f32 s, f32 tmin) {
  /* x^2 + z^2 = k^2 (h - y)^2, h = 2s, k = 1/2, 0 <= y <= h */
  scn_hit best = scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), 0);
  f32 h = 2.0f * s, k2 = 0.25f;
  f32 w = h - o.y;
  f32 a = d.x * d.x + d.z * d.z - k2 * d.y * d.y;
  f32 b = o.x * d.x + o.z * d.z + k2 * w * d.y;
  f32 c = o.x * o.x + o.z * o.z - k2 * w * w;
  if (SCN_ABS(a) > 1.0e-9f) {
    f32 disc = b * b - a * c;
    if (disc >= 0.0f) {
      f32 q = VKEBM_SQRT(disc);
      f32 t0 = (-b - q) / a, t1 = (-b + q) / a;
      f32 lo = SCN_MIN(t0, t1), hi = SCN_MAX(t0, t1);
      f32 ylo = o.y + d.y * lo, yhi = o.y + d.y * hi;
      f32 t = SCN_MISS;
      if (lo > tmin && ylo >= 0.0f && ylo <= h) t = lo;
      else if (hi > tmin && yhi >= 0.0f && yhi <= h) t = hi;
      if (t < SCN_MISS) {
        scn_v3 p = v3_add(o, v3_scale(d, t));
        best = scn_hit_make(t, v3_normalize(v3(p.x, k2 * (h - p.y), p.z)), 0);
      }
    }
  }
  best = scn_nearer(best, scn_hit_disc(o, d, 0.0f, s, -1.0f, tmin));
  return best;
}

/* Ray (ro, rd) in world space vs object k: moves the ray into the object's frame
 * (local = R_y(-yaw)(world - ground point)) and the normal back out. */
VKEBM_FN scn_hit scn_hit_object(SCN_DECL u32 k, scn_v3 ro, scn_v3 rd, f32 tmin) {
  u32 base = SCN_OBJ0 + k * SCN_OBJ_STRIDE;
  u32 shape = SCN_U32(SCN(base + SCN_O_SHAPE) + 0.5f);
  f32 s = SCN(base + SCN_O_SIZE);
  f32 cy = SCN(base + SCN_O_COS), sy = SCN(base + SCN_O_SIN);
  f32 wx = ro.x - SCN(base + SCN_O_X), wz = ro.z - SCN(base + SCN_O_Z);
  scn_v3 o = v3(cy * wx - sy * wz, ro.y, sy * wx + cy * wz);
  scn_v3 d = v3(cy * rd.x - sy * rd.z, rd.y, sy * rd.x + cy * rd.z);
  scn_hit h;
  if (shape == SCN_SHAPE_CUBE) h = scn_hit_box(o, d, s, tmin);
  else if (shape == SCN_SHAPE_SPHERE) h = scn_hit_sphere(o, d, s, tmin);
  else if (shape == SCN_SHAPE_CYLINDER) h = scn_hit_cylinder(o, d, s, tmin);
  else h = scn_hit_cone(o, d, s, tmin);
  h.n = v3(cy * h.n.x + sy * h.n.z, h.n.y, -sy * h.n.x + cy * h.n.z);
  h.id = SCN_I32(k);
  return h;
}

/* Nearest surface along a camera ray: objects, then the floor, else the sky. */
VKEBM_FN scn_hit scn_trace(SCN_DECL scn_v3 ro, scn_v3 rd) {
  scn_hit best = scn_hit_make(SCN_MISS, v3(0.0f, 1.0f, 0.0f), SCN_ID_SKY);
  if (rd.y < -1.0e-6f) best = scn_hit_make(-ro.y / rd.y, v3(0.0f, 1.0f, 0.0f), SCN_ID_FLOOR);
  u32 nobj = SCN_U32(SCN(SCN_NOBJ) + 0.5f);
  for (u32 k = 0u; k < nobj; k++) best = scn_nearer(best, scn_hit_object(SCN_PASS k, ro, rd, 1.0e-4f));
  return best;
}

/* 1 when the point p sees the light (no object in the way); `skip` is the object p lies on:
 * every shape is convex, so it cannot shadow itself where n.L > 0. */
VKEBM_FN f32 scn_light_visible(SCN_DECL scn_v3 p, scn_v3 l, i32 skip) {
  u32 nobj = SCN_U32(SCN(SCN_NOBJ) + 0.5f);
  for (u32 k = 0u; k < nobj; k++) {
    if (SCN_I32(k) == skip) continue;
    if (scn_hit_object(SCN_PASS k, p, l, 1.0e-4f).t < SCN_MISS) return 0.0f;
  }
  return 1.0f;
}

/* Colour of one camera ray:
 *   c = albedo * light_rgb * (ambient * (0.75 + 0.25 n.y) + (1 - ambient) * max(n.L, 0) * visible)
 * with the hemispheric factor (0.75 + 0.25 n.y) so faces turned away from the light still read
 * as 3D. The sky (if ever in view) is a flat grey. */
VKEBM_FN scn_v3 scn_shade_ray(SCN_DECL scn_v3 ro, scn_v3 rd) {
  scn_hit h = scn_trace(SCN_PASS ro, rd);
  if (h.id == SCN_ID_SKY) return v3(SCN(SCN_SKY_RGB), SCN(SCN_SKY_RGB), SCN(SCN_SKY_RGB));
  scn_v3 albedo;
  if (h.id == SCN_ID_FLOOR) albedo = v3(SCN(SCN_FLOOR_RGB), SCN(SCN_FLOOR_RGB + 1u), SCN(SCN_FLOOR_RGB + 2u));
  else {
    u32 base = SCN_OBJ0 + SCN_U32(h.id) * SCN_OBJ_STRIDE + SCN_O_RGB;
    albedo = v3(SCN(base), SCN(base + 1u), SCN(base + 2u));
  }
  scn_v3 l = v3(SCN(SCN_LIGHT_DIR), SCN(SCN_LIGHT_DIR + 1u), SCN(SCN_LIGHT_DIR + 2u));
  scn_v3 light = v3(SCN(SCN_LIGHT_RGB), SCN(SCN_LIGHT_RGB + 1u), SCN(SCN_LIGHT_RGB + 2u));
  f32 amb = SCN(SCN_AMBIENT);
  f32 ndl = v3_dot(h.n, l);
  f32 direct = 0.0f;
  if (ndl > 0.0f) {
    scn_v3 p = v3_add(v3_add(ro, v3_scale(rd, h.t)), v3_scale(h.n, 1.0e-3f));
    direct = ndl * scn_light_visible(SCN_PASS p, l, h.id);
  }
  f32 k = amb * (0.75f + 0.25f * h.n.y) + (1.0f - amb) * direct;
  return v3_scale(v3_mul(albedo, light), k);
}

/* Camera ray through NDC (u, v): from the eye toward inverse(P V) (u, v, 1, 1). */
VKEBM_FN scn_v3 scn_ray_dir(SCN_DECL f32 u, f32 v) {
  f32 x = SCN(0u) * u + SCN(4u) * v + SCN(8u) + SCN(12u);
  f32 y = SCN(1u) * u + SCN(5u) * v + SCN(9u) + SCN(13u);
  f32 z = SCN(2u) * u + SCN(6u) * v + SCN(10u) + SCN(14u);
  f32 w = SCN(3u) * u + SCN(7u) * v + SCN(11u) + SCN(15u);
  scn_v3 pfar = v3_scale(v3(x, y, z), 1.0f / w);
  scn_v3 eye = v3(SCN(SCN_EYE), SCN(SCN_EYE + 1u), SCN(SCN_EYE + 2u));
  return v3_normalize(v3_sub(pfar, eye));
}

/* One pixel (px, py) of a size x size image: the mean of four rotated-grid sub-samples,
 * clamped to [0, 1]. */
VKEBM_FN scn_v3 scn_shade_pixel(SCN_DECL u32 px, u32 py, u32 size) {
  scn_v3 eye = v3(SCN(SCN_EYE), SCN(SCN_EYE + 1u), SCN(SCN_EYE + 2u));
  f32 inv = 2.0f / VKEBM_F32(size);
  scn_v3 acc = v3(0.0f, 0.0f, 0.0f);
  for (u32 s = 0u; s < 4u; s++) {
    /* rotated grid (RGSS): (1/8, 5/8), (3/8, 1/8), (5/8, 7/8), (7/8, 3/8) of the pixel */
    f32 ox = 0.125f + 0.25f * VKEBM_F32(s);
    f32 oy = 0.125f + 0.25f * VKEBM_F32((s * 2u + 2u + (s >> 1u)) & 3u);
    f32 u = (VKEBM_F32(px) + ox) * inv - 1.0f;
    f32 v = 1.0f - (VKEBM_F32(py) + oy) * inv;
    acc = v3_add(acc, scn_shade_ray(SCN_PASS eye, scn_ray_dir(SCN_PASS u, v)));
  }
  acc = v3_scale(acc, 0.25f);
  return v3(SCN_CLAMP01(acc.x), SCN_CLAMP01(acc.y), SCN_CLAMP01(acc.z));
}

/* Which surface the pixel centre's ray hits (object index, SCN_ID_FLOOR or SCN_ID_SKY):
 * the renderer's exact object mask, for tests and segmentation labels. */
VKEBM_FN i32 scn_pixel_id(SCN_DECL u32 px, u32 py, u32 size) {
  scn_v3 eye = v3(SCN(SCN_EYE), SCN(SCN_EYE + 1u), SCN(SCN_EYE + 2u));
  f32 inv = 2.0f / VKEBM_F32(size);
  f32 u = (VKEBM_F32(px) + 0.5f) * inv - 1.0f;
  f32 v = 1.0f - (VKEBM_F32(py) + 0.5f) * inv;
  return scn_trace(SCN_PASS eye, scn_ray_dir(SCN_PASS u, v)).id;
}

#endif /* VKEBM_SCENE_SHADE_H */
