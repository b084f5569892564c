// Exact nearest neighbours on the CPU: for every query row of x (unit rows), the k other rows
// with the largest dot product (their cosine), by blocked GEMMs through the CPU backend, so
// 60,000 128-d embeddings are searched in seconds without an approximate index.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "eb_backend.h"

namespace {

// Candidates a block row offers, into the row's best k (best first).
void offer(const float *row, int64_t bj, int64_t j0, int64_t self, int k, int32_t *idx, float *best) {
    for (int64_t b = 0; b < bj; b++) {
        // Ties go to the lower index, as j runs upward: the result does not depend on blocking.
        if (j0 + b == self || !(row[b] > best[k - 1])) continue;
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

}  // namespace

extern "C" int eb_cpu_nearest_rows(const float *x, int64_t n, int d, int k, const int32_t *queries, int64_t nq,
                                   int32_t *out_idx, float *out_sim, const volatile int *cancel) {
    if (n < 0 || d < 1 || k < 1) return EB_ERR_ARG;
    if (!queries) nq = n;
    if (nq < 0) return EB_ERR_ARG;
    for (int64_t q = 0; queries && q < nq; q++)
        if (queries[q] < 0 || queries[q] >= n) return EB_ERR_ARG;
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    std::fill(out_idx, out_idx + nq * k, -1);
    std::fill(out_sim, out_sim + nq * k, -std::numeric_limits<float>::infinity());
    const int64_t block = 1024;
    std::vector<float> sims((size_t)block * block);
    // Listed queries are gathered a block at a time, so the GEMM reads contiguous rows.
    std::vector<float> gathered(queries ? (size_t)block * d : 0);
    for (int64_t i0 = 0; i0 < nq; i0 += block) {
        const int64_t bi = std::min(block, nq - i0);
        const float *q = x + i0 * d;
        if (queries) {
            for (int64_t a = 0; a < bi; a++) std::copy(x + (int64_t)queries[i0 + a] * d, x + ((int64_t)queries[i0 + a] + 1) * d, gathered.data() + a * d);
            q = gathered.data();
        }
        for (int64_t j0 = 0; j0 < n; j0 += block) {
            if (cancel && *cancel) return EB_ERR_CANCELLED;
            const int64_t bj = std::min(block, n - j0);
            const int st = cpu.iface->gemm(cpu.ctx, 0, 1, (int)bi, (int)bj, d, 1.0f, q, x + j0 * d, 0.0f, sims.data());
            if (st != EB_OK) return st;
            for (int64_t a = 0; a < bi; a++)
                offer(sims.data() + a * bj, bj, j0, queries ? queries[i0 + a] : i0 + a, k, out_idx + (i0 + a) * k, out_sim + (i0 + a) * k);
        }
    }
    return EB_OK;
}
