/* Pixel augmentation jobs: a batch of HWC RGB uint8 images in, normalised float32 out.
 *
 * Semantics (shared by every backend and by the TypeScript reference in the tests):
 * the geometric ops of a spec (flips, right-angle and free rotations, translations, and
 * the resize from the input size to the output size) compose into one affine map that is
 * sampled once, bilinearly, with zeros outside the image; then the colour ops run in the
 * order given, each clamped to [0, 255]; then cutout. Each op fires with probability p.
 * Random parameters come from a counter-based generator keyed by (seed, image index, op
 * index), so results do not depend on batching, threads or backend. */
#ifndef EB_AUG_H
#define EB_AUG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eb_aug_kind {
    EB_AUG_HFLIP = 1,
    EB_AUG_VFLIP = 2,
    EB_AUG_ROT90 = 3,      /* k quarter turns counter-clockwise (1, 2, 3) */
    EB_AUG_ROTATE = 4,     /* angle in degrees uniform in [a, b]; a == b is a fixed angle */
    EB_AUG_TRANSLATE = 5,  /* k > 0: random shift in [-k, k] px each axis (pad-and-crop);
                              k == 0: fixed shift (a, b) px */
    EB_AUG_BRIGHTNESS = 6, /* factor uniform in [1 - a, 1 + a] */
    EB_AUG_CONTRAST = 7,   /* factor uniform in [1 - a, 1 + a], around the mean grey */
    EB_AUG_SATURATION = 8, /* factor uniform in [1 - a, 1 + a], around each pixel's grey */
    EB_AUG_CUTOUT = 9      /* a k x k square of zeros at a uniformly drawn centre */
} eb_aug_kind;

#define EB_AUG_MAX_OPS 16
/* Floats of θ per op (aug_theta): fired, and two parameters in [-1, 1]. */
#define EB_AUG_THETA_PER_OP 3

typedef struct eb_aug_op {
    int32_t kind;
    float p;
    float a;
    float b;
    int32_t k;
} eb_aug_op;

typedef struct eb_aug_job {
    const uint8_t *src; /* n * in_h * in_w * 3 */
    int32_t n, in_h, in_w;
    float *dst;         /* n * 3 * out_h * out_w (NCHW) or n * out_h * out_w * 3 (NHWC) */
    int32_t out_h, out_w;
    int32_t nhwc;
    int32_t bgr;
    float scale;        /* applied to [0,255] values before mean/std, e.g. 1/255 */
    float mean[3];
    float std[3];
    const eb_aug_op *ops;
    int32_t n_ops;
    uint64_t seed;
    int64_t index_offset; /* global index of image 0, for the generator */
    const int64_t *indices; /* or NULL; else image i draws with indices[i] (stable per image) */
    int32_t threads;
} eb_aug_job;

#ifdef __cplusplus
}
#endif

#endif
