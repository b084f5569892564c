// Row statistics of the stochastic Ω forms (their Gaussians over 20,000+ base pairs), which
// took a quarter of a mixture density network's fit as JavaScript. Each element gets the same
// IEEE double operations in the same order as the JavaScript loops they replace (every sum runs
// over the rows in order; nothing contracted into an FMA: built with -ffp-contract=off), so the
// results are the same bits; the loops run across independent elements, which vectorises.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/simd.h"
#include "eb_backend.h"

namespace {

EB_SIMD_CLONES void accumulate_lower(double *__restrict cov, const double *__restrict c, int d) {
    for (int a = 0; a < d; a++) {
        const double ca = c[a];
        // Skipped as in the JavaScript this replaces, so that rows with non-finite values give
        // the same result too (0·∞ would add a NaN).
        if (ca == 0) continue;
        double *row = cov + (size_t)a * d;
        for (int b = 0; b <= a; b++) row[b] += ca * c[b];
    }
}

// Forward substitution of `rows` rows at once, the rows in the lanes: r[b·rows + i] is row i's
// b-th whitened value.
EB_SIMD_CLONES void solve_block(const float *__restrict t, int rows, int d, const float *__restrict mean,
                                const float *__restrict chol, double *__restrict r, double *__restrict s, float *__restrict u) {
    for (int a = 0; a < d; a++) {
        for (int i = 0; i < rows; i++) s[i] = (double)t[(size_t)i * d + a] - (double)mean[a];
        for (int b = 0; b < a; b++) {
            const double l = chol[(size_t)a * d + b];
            const double *rb = r + (size_t)b * rows;
            for (int i = 0; i < rows; i++) s[i] -= l * rb[i];
        }
        const double diag = chol[(size_t)a * d + a];
        double *ra = r + (size_t)a * rows;
        for (int i = 0; i < rows; i++) ra[i] = s[i] / diag;
    }
    for (int i = 0; i < rows; i++)
        for (int a = 0; a < d; a++) u[(size_t)i * d + a] = (float)r[(size_t)a * rows + i];
}

}  // namespace

extern "C" int eb_cpu_mean_covariance(const float *x, int64_t n, int d, int ddof, double *mean, double *cov) {
    if (n - ddof < 1 || d < 1) return EB_ERR_ARG;
    std::fill(mean, mean + d, 0.0);
    std::fill(cov, cov + (size_t)d * d, 0.0);
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < d; k++) mean[k] += x[i * d + k];
    for (int k = 0; k < d; k++) mean[k] /= (double)n;
    std::vector<double> c(d);
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < d; k++) c[k] = x[i * d + k] - mean[k];
        accumulate_lower(cov, c.data(), d);
    }
    const double div = (double)(n - ddof);
    for (int a = 0; a < d; a++)
        for (int b = 0; b <= a; b++) cov[(size_t)b * d + a] = cov[(size_t)a * d + b] /= div;
    return EB_OK;
}

extern "C" int eb_cpu_whiten_rows(const float *t, int64_t n, int d, const float *mean, const float *chol, float *u) {
    if (n < 0 || d < 1) return EB_ERR_ARG;
    constexpr int kRows = 64;
    std::vector<double> r((size_t)d * kRows), s(kRows);
    for (int64_t i0 = 0; i0 < n; i0 += kRows) {
        const int rows = (int)std::min<int64_t>(kRows, n - i0);
        solve_block(t + i0 * d, rows, d, mean, chol, r.data(), s.data(), u + i0 * d);
    }
    return EB_OK;
}
