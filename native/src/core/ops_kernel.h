// Per-row maths of the loss ops, shared by the CPU and CUDA backends so both compute the
// same formula in the same order (see aug_kernel.h for the augmentation counterpart).
#pragma once

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define EB_HD_OPS __host__ __device__ __forceinline__
#else
#define EB_HD_OPS inline
#endif

namespace eb {

// Softmax of z + sig (sig may be null) into d; returns log Σ exp(z + sig - top) and sets *top,
// the largest shifted logit, so a loss is the return value minus (z_y + sig_y - top).
EB_HD_OPS float softmax_row(const float *z, const float *sig, int c, float *d, float *top) {
    float zmax = z[0] + (sig ? sig[0] : 0.0f);
    for (int j = 1; j < c; j++) zmax = fmaxf(zmax, z[j] + (sig ? sig[j] : 0.0f));
    float sum = 0.0f;
    for (int j = 0; j < c; j++) {
        d[j] = expf(z[j] + (sig ? sig[j] : 0.0f) - zmax);
        sum += d[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < c; j++) d[j] *= inv;
    *top = zmax;
    return logf(sum);
}

// Index of the first maximal logit: the prediction.
EB_HD_OPS int argmax_row(const float *z, int c) {
    int arg = 0;
    for (int j = 1; j < c; j++)
        if (z[j] > z[arg]) arg = j;
    return arg;
}

// Softmax cross-entropy of one row: writes (softmax - onehot) * inv_m into d and returns the
// loss; *correct is 1 when the first maximal logit is the label.
EB_HD_OPS float softmax_xent_row(const float *z, int c, int32_t y, float inv_m, float *d, int *correct) {
    float top;
    const float lse = softmax_row(z, nullptr, c, d, &top);
    for (int j = 0; j < c; j++) d[j] = (d[j] - (j == y ? 1.0f : 0.0f)) * inv_m;
    *correct = argmax_row(z, c) == y;
    return lse - (z[y] - top);
}

// Softmax cross-entropy of one row against two labels mixed with weights lam and 1 - lam
// (mixup): d = (softmax - lam onehot(y) - (1 - lam) onehot(y2)) * inv_m; *correct is 1 when
// the first maximal logit is the label with the larger weight.
EB_HD_OPS float softmax_xent_mix_row(const float *z, int c, int32_t y, int32_t y2, float lam, float inv_m, float *d,
                                     int *correct) {
    float top;
    const float lse = softmax_row(z, nullptr, c, d, &top);
    for (int j = 0; j < c; j++) d[j] = (d[j] - (j == y ? lam : 0.0f) - (j == y2 ? 1.0f - lam : 0.0f)) * inv_m;
    *correct = argmax_row(z, c) == (lam >= 0.5f ? y : y2);
    return lam * (lse - (z[y] - top)) + (1.0f - lam) * (lse - (z[y2] - top));
}

// ISDA (Wang et al., NeurIPS 2019): with Σ_y the covariance of class y's features and w_j
// the last layer's weight rows, a[y][j] = Σ_y (w_j - w_y) and the upper bound of the expected
// cross-entropy under feature noise N(0, ratio Σ_y) is the cross-entropy of the logits
// z_j + σ[y][j], σ[y][j] = ratio/2 (w_j - w_y)·a[y][j]. Entry t of a[y][j]:
EB_HD_OPS float isda_a_entry(const float *w, const float *cov, int d, int y, int j, int t) {
    const float *row = cov + ((size_t)y * d + t) * d;
    float s = 0.0f;
    for (int k = 0; k < d; k++) s += row[k] * (w[(size_t)j * d + k] - w[(size_t)y * d + k]);
    return s;
}

EB_HD_OPS float isda_sigma_entry(const float *w, const float *a, float ratio, int c, int d, int y, int j) {
    const float *ay = a + ((size_t)y * c + j) * d;
    float s = 0.0f;
    for (int t = 0; t < d; t++) s += (w[(size_t)j * d + t] - w[(size_t)y * d + t]) * ay[t];
    return 0.5f * ratio * s;
}

// The ISDA loss of one row: softmax cross-entropy of z + sig (sig = σ[y]), d as above;
// *correct judges the plain logits, which is what the model predicts with.
EB_HD_OPS float isda_xent_row(const float *z, const float *sig, int c, int32_t y, float inv_m, float *d, int *correct) {
    float top;
    const float lse = softmax_row(z, sig, c, d, &top);
    for (int j = 0; j < c; j++) d[j] = (d[j] - (j == y ? 1.0f : 0.0f)) * inv_m;
    *correct = argmax_row(z, c) == y;
    return lse - (z[y] + sig[y] - top);
}

// The gradient σ adds to w_k, entry t: ratio (Σ_y G[y][k] a[y][k][t] - Σ_j G[k][j] a[k][j][t]),
// G[y][j] = the sum of dlogits[i][j] over the rows i of class y.
EB_HD_OPS float isda_dw_entry(const float *g, const float *a, float ratio, int c, int d, int k, int t) {
    float s = 0.0f;
    for (int y = 0; y < c; y++) s += g[(size_t)y * c + k] * a[((size_t)y * c + k) * d + t];
    for (int j = 0; j < c; j++) s -= g[(size_t)k * c + j] * a[((size_t)k * c + j) * d + t];
    return ratio * s;
}

// One entry of a class covariance updated online with a batch (ISDA's estimator): the batch
// holds n of the class with mean mb and (biased) covariance cb; before it, count and mean m.
EB_HD_OPS float merged_cov(float old, float count, float n, float cb, float mp, float mq, float mbp, float mbq) {
    const float w = n / (count + n);
    return old * (1.0f - w) + cb * w + w * (1.0f - w) * (mp - mbp) * (mq - mbq);
}

}  // namespace eb
