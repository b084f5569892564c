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

// Softmax cross-entropy of one row: writes (softmax - onehot) * inv_m into d and returns the
// loss; *correct is 1 when the first maximal logit is the label.
EB_HD_OPS float softmax_xent_row(const float *z, int c, int32_t y, float inv_m, float *d, int *correct) {
    int arg = 0;
    for (int j = 1; j < c; j++)
        if (z[j] > z[arg]) arg = j;
    const float zmax = z[arg];
    float sum = 0.0f;
    for (int j = 0; j < c; j++) {
        d[j] = expf(z[j] - zmax);
        sum += d[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < c; j++) d[j] = (d[j] * inv - (j == y ? 1.0f : 0.0f)) * inv_m;
    *correct = arg == y;
    return logf(sum) - (z[y] - zmax);
}

}  // namespace eb
