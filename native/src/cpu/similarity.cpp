// Exact similarity join on the CPU: all pairs (i < j) of unit rows whose dot product (their
// cosine) reaches a threshold, by blocked GEMMs of X·Xᵀ through the CPU backend, so 60,000
// 128-d embeddings are searched in seconds without an approximate index.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "eb_backend.h"

extern "C" int64_t eb_cpu_similar_pairs(const float *x, int64_t n, int d, float threshold, int64_t max_pairs, int32_t *out_i,
                                        int32_t *out_j, float *out_s, const volatile int *cancel) {
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    const int64_t block = 1024;
    std::vector<float> sims((size_t)block * block);
    int64_t count = 0;
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        const int64_t bi = std::min(block, n - i0);
        for (int64_t j0 = i0; j0 < n; j0 += block) {
            if (cancel && *cancel) return -2;
            const int64_t bj = std::min(block, n - j0);
            cpu.iface->gemm(cpu.ctx, 0, 1, (int)bi, (int)bj, d, 1.0f, x + i0 * d, x + j0 * d, 0.0f, sims.data());
            for (int64_t a = 0; a < bi; a++) {
                const float *row = sims.data() + a * bj;
                for (int64_t b = (j0 == i0 ? a + 1 : 0); b < bj; b++) {
                    if (row[b] < threshold) continue;
                    if (count >= max_pairs) return -1;
                    out_i[count] = (int32_t)(i0 + a);
                    out_j[count] = (int32_t)(j0 + b);
                    out_s[count] = row[b];
                    count++;
                }
            }
        }
    }
    return count;
}
