// Exact nearest neighbours on the CPU: for every unit row of x, the k other rows with the
// largest dot product (their cosine), by blocked GEMMs of X·Xᵀ through the CPU backend, so
// 60,000 128-d embeddings are searched in seconds without an approximate index.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "eb_backend.h"

extern "C" int eb_cpu_nearest_rows(const float *x, int64_t n, int d, int k, int32_t *out_idx, float *out_sim,
                                   const volatile int *cancel) {
    if (n < 0 || d < 1 || k < 1) return EB_ERR_ARG;
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    std::fill(out_idx, out_idx + n * k, -1);
    std::fill(out_sim, out_sim + n * k, -std::numeric_limits<float>::infinity());
    const int64_t block = 1024;
    std::vector<float> sims((size_t)block * block);
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        const int64_t bi = std::min(block, n - i0);
        for (int64_t j0 = 0; j0 < n; j0 += block) {
            if (cancel && *cancel) return EB_ERR_CANCELLED;
            const int64_t bj = std::min(block, n - j0);
            const int st = cpu.iface->gemm(cpu.ctx, 0, 1, (int)bi, (int)bj, d, 1.0f, x + i0 * d, x + j0 * d, 0.0f, sims.data());
            if (st != EB_OK) return st;
            for (int64_t a = 0; a < bi; a++) {
                const float *row = sims.data() + a * bj;
                int32_t *idx = out_idx + (i0 + a) * k;
                float *best = out_sim + (i0 + a) * k;
                for (int64_t b = 0; b < bj; b++) {
                    // Ties go to the lower index, as j runs upward: the result does not depend on blocking.
                    if (j0 + b == i0 + a || !(row[b] > best[k - 1])) continue;
                    int p = k - 1;
                    while (p > 0 && row[b] > best[p - 1]) {
                        best[p] = best[p - 1];
                        idx[p] = idx[p - 1];
                        p--;
                    }
                    best[p] = row[b];
                    idx[p] = (int32_t)(j0 + b);
                }
            }
        }
    }
    return EB_OK;
}
