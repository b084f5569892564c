// Per-image augmentation maths shared by the CPU and CUDA backends, so that both compute
// the same thing from the same formulas (see eb_aug.h for the semantics).
#pragma once

#include <math.h>
#include <stdint.h>

#include "eb_aug.h"

#ifdef __CUDACC__
#define EB_HD __host__ __device__ __forceinline__
#else
#define EB_HD inline
#endif

namespace eb {

// splitmix64 finaliser: a counter-based generator needs a strong mix, not a sequence.
EB_HD uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 bits, identical on host and device.
EB_HD float aug_uniform(uint64_t seed, int64_t image, int op, int draw) {
    uint64_t h = mix64(seed ^ mix64((uint64_t)image * 0x100000001B3ull + (uint64_t)(op * 8 + draw)));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

struct AugPost {
    int32_t kind;
    float factor;
    int32_t x0, y0, x1, y1;  // cutout rectangle, half-open
};

struct AugPlan {
    float m[6];  // output continuous (u, v) -> input continuous (x, y)
    int32_t n_post;
    AugPost post[EB_AUG_MAX_OPS];
};

// m <- m o g, for g another affine map of the same form.
EB_HD void affine_then(float *m, const float *g) {
    float r[6];
    r[0] = m[0] * g[0] + m[1] * g[3];
    r[1] = m[0] * g[1] + m[1] * g[4];
    r[2] = m[0] * g[2] + m[1] * g[5] + m[2];
    r[3] = m[3] * g[0] + m[4] * g[3];
    r[4] = m[3] * g[1] + m[4] * g[4];
    r[5] = m[3] * g[2] + m[4] * g[5] + m[5];
    for (int i = 0; i < 6; i++) m[i] = r[i];
}

// Inverse of a rotation by (c, s) = (cos, sin) about the output centre.
EB_HD void rotation_inverse(float c, float s, float cx, float cy, float *g) {
    g[0] = c; g[1] = -s; g[2] = cx - c * cx + s * cy;
    g[3] = s; g[4] = c;  g[5] = cy - s * cx - c * cy;
}

EB_HD void aug_plan(const eb_aug_job &job, int64_t image, AugPlan &plan) {
    const float W = (float)job.out_w, H = (float)job.out_h, cx = W * 0.5f, cy = H * 0.5f;
    plan.m[0] = (float)job.in_w / W; plan.m[1] = 0; plan.m[2] = 0;
    plan.m[3] = 0; plan.m[4] = (float)job.in_h / H; plan.m[5] = 0;
    plan.n_post = 0;
    for (int k = 0; k < job.n_ops && k < EB_AUG_MAX_OPS; k++) {
        const eb_aug_op op = job.ops[k];
        if (op.p < 1.0f && aug_uniform(job.seed, image, k, 0) >= op.p) continue;
        const float u1 = aug_uniform(job.seed, image, k, 1), u2 = aug_uniform(job.seed, image, k, 2);
        float g[6] = {1, 0, 0, 0, 1, 0};
        switch (op.kind) {
        case EB_AUG_HFLIP: g[0] = -1; g[2] = W; break;
        case EB_AUG_VFLIP: g[4] = -1; g[5] = H; break;
        case EB_AUG_ROT90: {
            // Exact integer matrices: cos/sin of multiples of pi/2 would leave 1e-8 residues.
            const int q = ((op.k % 4) + 4) % 4;
            const float cs[4] = {1, 0, -1, 0}, sn[4] = {0, 1, 0, -1};
            rotation_inverse(cs[q], sn[q], cx, cy, g);
            break;
        }
        case EB_AUG_ROTATE: {
            const float deg = op.a + (op.b - op.a) * u1;
            const float rad = deg * 0.017453292519943295f;
            rotation_inverse(cosf(rad), sinf(rad), cx, cy, g);
            break;
        }
        case EB_AUG_TRANSLATE: {
            float dx = op.a, dy = op.b;
            if (op.k > 0) {
                const int span = 2 * op.k + 1;
                dx = (float)((int)(u1 * span) - op.k);
                dy = (float)((int)(u2 * span) - op.k);
            }
            g[2] = -dx; g[5] = -dy;
            break;
        }
        case EB_AUG_BRIGHTNESS: case EB_AUG_CONTRAST: case EB_AUG_SATURATION: {
            AugPost &p = plan.post[plan.n_post++];
            p.kind = op.kind; p.factor = 1.0f - op.a + 2.0f * op.a * u1;
            continue;
        }
        case EB_AUG_CUTOUT: {
            AugPost &p = plan.post[plan.n_post++];
            const int ccx = (int)(u1 * job.out_w), ccy = (int)(u2 * job.out_h), half = op.k / 2;
            p.kind = op.kind; p.factor = 0;
            p.x0 = ccx - half; p.y0 = ccy - half; p.x1 = p.x0 + op.k; p.y1 = p.y0 + op.k;
            continue;
        }
        default: continue;
        }
        affine_then(plan.m, g);
    }
}

// θ of one image: the parameters aug_plan draws for it, EB_AUG_THETA_PER_OP floats per op, for
// a conditional Ω(z, θ). Slot 0 is 1 when the op fired, else 0; slots 1 and 2 are its random
// parameters scaled to [-1, 1] (the angle over the largest |angle| of the range, the shift
// over the padding, the colour factor's offset over its strength, the cutout centre over the
// image), 0 when the op did not fire or draws nothing. Same generator calls as aug_plan, so
// θ describes exactly the view the pixels got.
EB_HD void aug_theta(const eb_aug_op *ops, int n_ops, uint64_t seed, int64_t image, float *theta) {
    for (int k = 0; k < n_ops && k < EB_AUG_MAX_OPS; k++) {
        const eb_aug_op op = ops[k];
        float *t = theta + k * EB_AUG_THETA_PER_OP;
        t[0] = t[1] = t[2] = 0.0f;
        if (op.p < 1.0f && aug_uniform(seed, image, k, 0) >= op.p) continue;
        t[0] = 1.0f;
        const float u1 = aug_uniform(seed, image, k, 1), u2 = aug_uniform(seed, image, k, 2);
        switch (op.kind) {
        case EB_AUG_ROTATE: {
            const float range = fmaxf(fabsf(op.a), fabsf(op.b));
            if (op.a != op.b && range > 0) t[1] = (op.a + (op.b - op.a) * u1) / range;
            break;
        }
        case EB_AUG_TRANSLATE:
            if (op.k > 0) {
                const int span = 2 * op.k + 1;
                t[1] = (float)((int)(u1 * span) - op.k) / op.k;
                t[2] = (float)((int)(u2 * span) - op.k) / op.k;
            }
            break;
        case EB_AUG_BRIGHTNESS: case EB_AUG_CONTRAST: case EB_AUG_SATURATION:
            if (op.a > 0) t[1] = 2.0f * u1 - 1.0f;
            break;
        case EB_AUG_CUTOUT:
            t[1] = 2.0f * u1 - 1.0f;
            t[2] = 2.0f * u2 - 1.0f;
            break;
        default: break;
        }
    }
}

// Coordinates this close to a pixel centre are taken as exact, so flips and right-angle
// rotations copy pixels bit for bit despite float rounding in the composed map.
EB_HD float snap(float v) {
    const float r = rintf(v);
    return fabsf(v - r) < 1e-3f ? r : v;
}

// Bilinear sample of output pixel (x, y); half a pixel of edge is replicated, beyond that zero.
EB_HD void aug_sample(const uint8_t *img, int h, int w, const float *m, int x, int y, float *rgb) {
    const float u = x + 0.5f, v = y + 0.5f;
    float sx = snap(m[0] * u + m[1] * v + m[2] - 0.5f);
    float sy = snap(m[3] * u + m[4] * v + m[5] - 0.5f);
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    if (sx < -0.5f || sy < -0.5f || sx > w - 0.5f || sy > h - 0.5f) return;
    sx = fminf(fmaxf(sx, 0.0f), (float)(w - 1));
    sy = fminf(fmaxf(sy, 0.0f), (float)(h - 1));
    const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
    const int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    const float fx = sx - x0, fy = sy - y0;
    const uint8_t *p00 = img + ((size_t)y0 * w + x0) * 3, *p01 = img + ((size_t)y0 * w + x1) * 3;
    const uint8_t *p10 = img + ((size_t)y1 * w + x0) * 3, *p11 = img + ((size_t)y1 * w + x1) * 3;
    for (int c = 0; c < 3; c++) {
        const float top = p00[c] + (p01[c] - (float)p00[c]) * fx;
        const float bot = p10[c] + (p11[c] - (float)p10[c]) * fx;
        rgb[c] = top + (bot - top) * fy;
    }
}

EB_HD float clamp255(float v) { return fminf(fmaxf(v, 0.0f), 255.0f); }
EB_HD float grey(const float *rgb) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }

// One colour op on one pixel; mean_grey is only read by contrast.
EB_HD void aug_post_pixel(const AugPost &p, int x, int y, float mean_grey, float *rgb) {
    switch (p.kind) {
    case EB_AUG_BRIGHTNESS:
        for (int c = 0; c < 3; c++) rgb[c] = clamp255(rgb[c] * p.factor);
        break;
    case EB_AUG_CONTRAST:
        for (int c = 0; c < 3; c++) rgb[c] = clamp255(mean_grey + (rgb[c] - mean_grey) * p.factor);
        break;
    case EB_AUG_SATURATION: {
        const float g = grey(rgb);
        for (int c = 0; c < 3; c++) rgb[c] = clamp255(g + (rgb[c] - g) * p.factor);
        break;
    }
    case EB_AUG_CUTOUT:
        if (x >= p.x0 && x < p.x1 && y >= p.y0 && y < p.y1) rgb[0] = rgb[1] = rgb[2] = 0.0f;
        break;
    }
}

EB_HD void aug_store(const eb_aug_job &job, int64_t i, int x, int y, const float *rgb) {
    const size_t plane = (size_t)job.out_h * job.out_w;
    for (int c = 0; c < 3; c++) {
        const int src_c = job.bgr ? 2 - c : c;
        const float v = (rgb[src_c] * job.scale - job.mean[c]) / job.std[c];
        if (job.nhwc) job.dst[((size_t)i * plane + (size_t)y * job.out_w + x) * 3 + c] = v;
        else job.dst[((size_t)i * 3 + c) * plane + (size_t)y * job.out_w + x] = v;
    }
}

}  // namespace eb
