// The CPU backend: the reference every other backend is checked against. GEMM goes to
// OpenBLAS through CBLAS (Eigen where OpenBLAS is absent, such as the GPU machines that run
// only the parity program), the shapes of a training step's gradients to libxsmm's JIT kernels
// where it is built in (see xsmm_gemm); the elementwise ops are plain loops the compiler vectorises.
#ifdef EB_USE_EIGEN
#include <Eigen/Dense>
#else
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char *openblas_get_corename(void);
#endif
#ifdef EB_USE_LIBXSMM
#include <libxsmm.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../core/aug_kernel.h"
#include "../core/ops_kernel.h"
#include "../core/simd.h"
#include "eb_backend.h"

namespace {

int g_threads = 0;

#ifdef EB_USE_LIBXSMM
// libxsmm gives OpenBLAS's floats only against the kernels it was checked against: OpenBLAS's
// Skylake-X SGEMM, which its Cooperlake target (AVX-512 with BF16: Cooper Lake, and AMD's Zen 4
// EPYC) runs too, adding only bfloat16 kernels. Its Haswell kernels (those of AVX2 processors)
// round differently, so with them a head trained through libxsmm came out other than with
// OpenBLAS alone (forced with OPENBLAS_CORETYPE=Haswell), and libxsmm stays off.
// EMBAUG_GEMM=openblas turns it off anywhere (to compare, or where a policy forbids JIT code).
const bool g_xsmm_wanted = [] {
    const char *v = std::getenv("EMBAUG_GEMM");
    const char *core = openblas_get_corename();
    return !(v && std::strcmp(v, "openblas") == 0) && core && (std::strcmp(core, "SkylakeX") == 0 || std::strcmp(core, "Cooperlake") == 0);
}();

// OpenBLAS 0.3.21's Skylake-X SGEMM sums K in chunks, adding each chunk's sum to C in order: q
// while at least 2q remain, then what is left in two parts, the first half rounded up to 16.
// q is its target's blocking: 448 on Skylake-X (512 → 256 + 256, 600 → 304 + 296, 1024 → 448 +
// 288 + 288), 320 on Cooperlake (1024 → 320 + 320 + 192 + 192). Measured on random inputs at K
// = 321 to 2048: libxsmm over exactly these chunks, the partial sums added in the same order,
// gives OpenBLAS's floats bit for bit, and other splits do not.
int openblas_k_chunk(int q, int rest) { return rest >= 2 * q ? q : rest > q ? (rest / 2 + 15) / 16 * 16 : rest; }

// C = op(A)·B in libxsmm over OpenBLAS's K chunks of q; false (nothing written) where libxsmm
// cannot generate a kernel (an unsupported CPU, no executable memory).
constexpr int64_t kXsmmBlock = 128 * 1024;
bool xsmm_gemm(int q, int ta, int m, int n, int k, const float *a, const float *b, float *c) {
    // Row-major C = op(A)·B is column-major Cᵀ = Bᵀ·op(A)ᵀ: the operands swap and A's transpose moves to the second.
    const float one = 1.0f, zero = 0.0f;
    const int flags = ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0, lda = n, ldb = ta ? m : k, ldc = n;
    const int rows = (int)std::min<int64_t>(m, kXsmmBlock / n);
    // The registry of generated kernels is libxsmm's own and safe to share between training threads.
    const auto kernel = [&](int mb, int kc) { return libxsmm_smmdispatch(n, mb, kc, &lda, &ldb, &ldc, &one, &zero, &flags, nullptr); };
    for (int k0 = 0, kc; k0 < k; k0 += kc) {
        kc = openblas_k_chunk(q, k - k0);
        if (!kernel(rows, kc) || (m % rows && !kernel(m % rows, kc))) return false;
    }
    // A chunk's partial sums, before they are added to C; one buffer per training thread.
    thread_local std::vector<float> partial;
    for (int i0 = 0; i0 < m; i0 += rows) {
        const int mb = std::min(rows, m - i0);
        const float *ai = ta ? a + i0 : a + (size_t)i0 * k;
        float *ci = c + (size_t)i0 * n;
        for (int k0 = 0, kc; k0 < k; k0 += kc) {
            kc = openblas_k_chunk(q, k - k0);
            const float *ak = ta ? ai + (size_t)k0 * m : ai + k0, *bk = b + (size_t)k0 * n;
            if (k0 == 0) {
                kernel(mb, kc)(bk, ak, ci);
            } else {
                partial.resize((size_t)mb * n);
                kernel(mb, kc)(bk, ak, partial.data());
                for (size_t i = 0; i < partial.size(); i++) ci[i] += partial[i];
            }
        }
    }
    return true;
}

// libxsmm 1.17's initialisation sets OMP_PROC_BIND=TRUE in the process's environment where it
// is unset or empty, and every process started afterwards inherits it: an OpenMP program (a
// PyTorch) then binds its main thread to the first CPU of its mask, every copy to the same one.
// Two single-threaded PyTorch peers started by `npm run bench -- mlp` after our trainings shared
// one core of two that way, at half their speed, and an sbatch submission exports it to the
// cluster. Initialised here, before any kernel is asked for, with the variable put back as it was.
void xsmm_init_quietly() {
    const char *v = std::getenv("OMP_PROC_BIND");
    const std::string before = v ? v : "";
    const bool had = v != nullptr;
    libxsmm_init();
    if (had)
        setenv("OMP_PROC_BIND", before.c_str(), 1);
    else
        unsetenv("OMP_PROC_BIND");
}

// The chunk of the OpenBLAS loaded, asked of OpenBLAS itself once rather than read from a table
// of targets and versions: the candidate whose chunked product equals OpenBLAS's own, bit for
// bit, at 128×128×1,024 (the chunks of the two known blockings differ there, and a third would
// match neither), or 0, which keeps libxsmm off. About a millisecond, at the first GEMM.
int xsmm_q() {
    static const int q = [] {
        if (!g_xsmm_wanted) return 0;
        xsmm_init_quietly();
        constexpr int m = 128, n = 128, k = 1024;
        std::vector<float> a((size_t)m * k), b((size_t)k * n), want((size_t)m * n), got((size_t)m * n);
        uint32_t state = 1;
        const auto next = [&] { return (float)((state = state * 1664525u + 1013904223u) >> 8) / (float)(1u << 24) - 0.5f; };
        for (float &x : a) x = next();
        for (float &x : b) x = next();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, want.data(), n);
        for (int q : {448, 320})
            if (xsmm_gemm(q, 0, m, n, k, a.data(), b.data(), got.data()) && std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0) return q;
        return 0;
    }();
    return q;
}

// A training step's GEMMs at Ψ's and Ω's shapes (batch 128, 1024 hidden) run 17–36% faster in
// libxsmm's JIT kernels than in OpenBLAS, which packs both operands first (`npm run bench --
// mlp`, one thread, Skylake-X; 3–23% on a Zen 4 EPYC, in its chunks of 320). Taken only where
// both accumulate each element alike, so that every number stays OpenBLAS's bit for bit
// (measured over these shapes, random inputs), and where libxsmm is faster (measured on
// Skylake-X): K up to 768 in OpenBLAS's chunks when each chunk is at
// most 384 (at K = 512, 256 + 256, 174 GFLOP/s against OpenBLAS's 131), or the output at
// most 512 wide (chunks of 448 × 1,024 ran slower than OpenBLAS, × 512 and narrower 20–55%
// faster); neither side under 64 (OpenBLAS has other kernels there) and the output at most
// 1,024 wide. Outputs of more than 128×1,024 (the first layer's weight gradient of a wide
// embedding, D×1,024, and forward passes over the evaluation's chunks of 1,024 rows) go in
// blocks of 128×1,024 or as many rows as make that size: at D = 512, 158–164 GFLOP/s against
// OpenBLAS's 140–146 on the whole. libxsmm's column-major kernels cannot take a transposed B in
// our row-major terms (x·Wᵀ, the forward pass of every layer but the first, whose weight Mlp
// keeps transposed): cpu_gemm transposes B first (see there). Other α and β stay with OpenBLAS.
bool xsmm_takes(int m, int n, int k, float alpha, float beta) {
    if (alpha != 1.0f || beta != 0.0f || m < 64 || n < 64 || n > 1024 || xsmm_q() == 0) return false;
    return (k <= 768 && openblas_k_chunk(xsmm_q(), k) <= 384) || n <= 512;
}

#endif

// The optimiser and the bias/activation passes run over every parameter or activation of a
// step. Built for AVX-512 beside the baseline (EB_SIMD_CLONES), and with each layer updated
// while its gradients are in cache (Mlp::train), they took 9% of a profile of two Ψ trainings
// at D = 128 instead of 12% (about +3% of the trainings' rate on their own).

const char *cpu_name(void *) { return "cpu"; }
#ifdef EB_USE_EIGEN
const char *cpu_device_name(void *) { return "host CPU (Eigen)"; }
#elif defined(EB_USE_LIBXSMM)
const char *cpu_device_name(void *) { return xsmm_q() ? "host CPU (OpenBLAS, libxsmm)" : "host CPU (OpenBLAS)"; }
#else
const char *cpu_device_name(void *) { return "host CPU (OpenBLAS)"; }
#endif
size_t cpu_device_memory(void *) { return 0; }
void cpu_destroy(void *) {}

void *cpu_alloc(void *, size_t bytes) {
    // 64-byte alignment keeps OpenBLAS and the vectorised loops on aligned loads.
    void *p = nullptr;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return nullptr;
    return p;
}
void cpu_release(void *, void *p) { free(p); }
int cpu_copy(void *, void *dst, const void *src, size_t bytes) {
    std::memcpy(dst, src, bytes);
    return EB_OK;
}
int cpu_fill(void *, float *dst, float v, size_t n) {
    std::fill(dst, dst + n, v);
    return EB_OK;
}

int cpu_gemm(void *, int ta, int tb, int m, int n, int k, float alpha, const float *a, const float *b,
             float beta, float *c) {
#ifdef EB_USE_EIGEN
    using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const Mat> A(a, ta ? k : m, ta ? m : k), B(b, tb ? n : k, tb ? k : n);
    Eigen::Map<Mat> C(c, m, n);
    if (beta == 0.0f) C.setZero();
    else C *= beta;
    if (ta && tb) C.noalias() += alpha * A.transpose() * B.transpose();
    else if (ta) C.noalias() += alpha * A.transpose() * B;
    else if (tb) C.noalias() += alpha * A * B.transpose();
    else C.noalias() += alpha * A * B;
#else
#ifdef EB_USE_LIBXSMM
    if (xsmm_takes(m, n, k, alpha, beta)) {
        if (!tb && xsmm_gemm(xsmm_q(), ta, m, n, k, a, b, c)) return EB_OK;
        // x·Wᵀ with at most 128 outputs (Ψ's second layer, Ω's): W transposed by OpenBLAS (20 µs
        // for Ψ's 128×1,024 alone; libxsmm's own and an AVX 8×8 kernel took 39) and then x·(Wᵀ)
        // in libxsmm: 15–30% faster than OpenBLAS's x·Wᵀ on one thread, at batch 128 and in the
        // evaluation's chunks; within a training, where W comes from its update out of cache,
        // the copy costs more (3% of a profile) and two trainings at D = 128 gained 1.5–2%.
        // With wider outputs the copy cost more than it saved (measured).
        if (tb && !ta && n <= 128) {
            thread_local std::vector<float> bt;
            bt.resize((size_t)k * n);
            cblas_somatcopy(CblasRowMajor, CblasTrans, n, k, 1.0f, b, k, bt.data(), n);
            if (xsmm_gemm(xsmm_q(), 0, m, n, k, a, bt.data(), c)) return EB_OK;
        }
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
#endif
    return EB_OK;
}

EB_SIMD_CLONES int cpu_bias_act(void *, float *y, const float *bias, int m, int n, int relu) {
    for (int i = 0; i < m; i++) {
        float *row = y + (size_t)i * n;
        if (relu)
            for (int j = 0; j < n; j++) row[j] = std::max(row[j] + bias[j], 0.0f);
        else
            for (int j = 0; j < n; j++) row[j] += bias[j];
    }
    return EB_OK;
}

EB_SIMD_CLONES int cpu_act_bias_grad(void *, float *dy, const float *y, int m, int n, int relu, float *db) {
    std::fill(db, db + n, 0.0f);
    for (int i = 0; i < m; i++) {
        float *drow = dy + (size_t)i * n;
        const float *yrow = y + (size_t)i * n;
        if (relu)
            for (int j = 0; j < n; j++) drow[j] = yrow[j] > 0.0f ? drow[j] : 0.0f;
        for (int j = 0; j < n; j++) db[j] += drow[j];
    }
    return EB_OK;
}

int cpu_add(void *, float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
    return EB_OK;
}

int cpu_gather(void *, float *dst, const float *src, const int32_t *idx, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        std::memcpy(dst + (size_t)i * cols, src + (size_t)idx[i] * cols, sizeof(float) * cols);
    return EB_OK;
}

int cpu_gather_i32(void *, int32_t *dst, const int32_t *src, const int32_t *idx, int rows) {
    for (int i = 0; i < rows; i++) dst[i] = src[idx[i]];
    return EB_OK;
}

int cpu_softmax_xent(void *, const float *logits, const int32_t *labels, int m, int c, float *dl, float *acc) {
    double loss = 0;
    int correct = 0;
    const float inv_m = 1.0f / m;
    for (int i = 0; i < m; i++) {
        int ok = 0;
        loss += eb::softmax_xent_row(logits + (size_t)i * c, c, labels[i], inv_m, dl + (size_t)i * c, &ok);
        correct += ok;
    }
    acc[0] += (float)loss;
    acc[1] += (float)correct;
    return EB_OK;
}

int cpu_mse(void *, const float *pred, const float *target, int m, int n, float *dpred, float *acc) {
    const size_t count = (size_t)m * n;
    const float scale = 2.0f / (float)count;
    double sse = 0;
    for (size_t i = 0; i < count; i++) {
        const float e = pred[i] - target[i];
        sse += (double)e * e;
        dpred[i] = scale * e;
    }
    acc[0] += (float)sse;
    return EB_OK;
}

int cpu_softmax_xent_mix(void *, const float *logits, const int32_t *labels, const int32_t *labels2, float lam, int m,
                         int c, float *dl, float *acc) {
    double loss = 0;
    int correct = 0;
    for (int i = 0; i < m; i++) {
        int ok = 0;
        loss += eb::softmax_xent_mix_row(logits + (size_t)i * c, c, labels[i], labels2[i], lam, 1.0f / m, dl + (size_t)i * c, &ok);
        correct += ok;
    }
    acc[0] += (float)loss;
    acc[1] += (float)correct;
    return EB_OK;
}

int cpu_mix(void *, float *y, const float *x, float lam, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = lam * y[i] + (1.0f - lam) * x[i];
    return EB_OK;
}

int cpu_class_stats(void *ctx, const float *f, const int32_t *labels, int m, int d, int c, float *mean, float *cov,
                    float *count) {
    std::vector<float> xc, cb((size_t)d * d), mb(d);
    for (int k = 0; k < c; k++) {
        xc.clear();
        for (int i = 0; i < m; i++)
            if (labels[i] == k) xc.insert(xc.end(), f + (size_t)i * d, f + (size_t)(i + 1) * d);
        const int n = (int)(xc.size() / d);
        if (n == 0) continue;
        std::fill(mb.begin(), mb.end(), 0.0f);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < d; t++) mb[t] += xc[(size_t)i * d + t];
        for (int t = 0; t < d; t++) mb[t] /= (float)n;
        for (int i = 0; i < n; i++)
            for (int t = 0; t < d; t++) xc[(size_t)i * d + t] -= mb[t];
        // The batch covariance as one GEMM of the centred rows: d² n multiply-adds per class.
        cpu_gemm(ctx, 1, 0, d, d, n, 1.0f / (float)n, xc.data(), xc.data(), 0.0f, cb.data());
        float *ck = cov + (size_t)k * d * d, *mk = mean + (size_t)k * d;
        for (int p = 0; p < d; p++)
            for (int q = 0; q < d; q++)
                ck[(size_t)p * d + q] = eb::merged_cov(ck[(size_t)p * d + q], count[k], (float)n, cb[(size_t)p * d + q], mk[p], mk[q], mb[p], mb[q]);
        const float w = (float)n / (count[k] + (float)n);
        for (int t = 0; t < d; t++) mk[t] = mk[t] * (1.0f - w) + mb[t] * w;
        count[k] += (float)n;
    }
    return EB_OK;
}

int cpu_isda_xent(void *, const float *logits, const int32_t *labels, const float *w, const float *cov, float ratio, int m,
                  int c, int d, float *scratch, float *dl, float *dw, float *acc) {
    float *a = scratch, *sig = a + (size_t)c * c * d, *g = sig + (size_t)c * c;
    for (int y = 0; y < c; y++)
        for (int j = 0; j < c; j++)
            for (int t = 0; t < d; t++) a[((size_t)y * c + j) * d + t] = eb::isda_a_entry(w, cov, d, y, j, t);
    for (int y = 0; y < c; y++)
        for (int j = 0; j < c; j++) sig[(size_t)y * c + j] = eb::isda_sigma_entry(w, a, ratio, c, d, y, j);
    double loss = 0;
    int correct = 0;
    std::fill(g, g + (size_t)c * c, 0.0f);
    for (int i = 0; i < m; i++) {
        int ok = 0;
        float *di = dl + (size_t)i * c;
        loss += eb::isda_xent_row(logits + (size_t)i * c, sig + (size_t)labels[i] * c, c, labels[i], 1.0f / m, di, &ok);
        correct += ok;
        for (int j = 0; j < c; j++) g[(size_t)labels[i] * c + j] += di[j];
    }
    for (int k = 0; k < c; k++)
        for (int t = 0; t < d; t++) dw[(size_t)k * d + t] = eb::isda_dw_entry(g, a, ratio, c, d, k, t);
    acc[0] += (float)loss;
    acc[1] += (float)correct;
    return EB_OK;
}

EB_SIMD_CLONES int cpu_sgd(void *, float *w, const float *g, float *v, size_t n, float lr, float mom, float wd, int nesterov) {
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] + wd * w[i];
        v[i] = mom * v[i] + gi;
        w[i] -= lr * (nesterov ? gi + mom * v[i] : v[i]);
    }
    return EB_OK;
}

EB_SIMD_CLONES int cpu_adam(void *, float *w, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
             float eps, float wd, int t) {
    const float c1 = 1.0f - std::pow(b1, (float)t), c2 = 1.0f - std::pow(b2, (float)t);
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        const float mh = m[i] / c1, vh = v[i] / c2;
        w[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * w[i]);
    }
    return EB_OK;
}

// Where a view moves whole pixels (identity, flips, right-angle turns, whole-pixel shifts that
// stay inside the image) and changes no colour, the bilinear sample's weights are exactly 0 and
// 1: a gather through per-channel tables of the normalised values gives the same floats, bit
// for bit, several times faster (an extraction spends most of its non-Φ time here otherwise).
// Returns false, touching nothing, for any other view.
bool gather_whole_pixels(const eb_aug_job &job, const eb::AugPlan &plan, const float (*table)[256], const uint8_t *img, int64_t i) {
    const float *m = plan.m;
    const int ow = job.out_w, oh = job.out_h, w = job.in_w, h = job.in_h;
    if (plan.n_post != 0) return false;
    for (int k : {0, 1, 3, 4})
        if (m[k] != -1.0f && m[k] != 0.0f && m[k] != 1.0f) return false;
    // Source of the output pixel (x, y), as aug_sample computes it: exact integers, inside.
    auto source = [&](int x, int y, int &sx, int &sy) {
        const float fx = m[0] * (x + 0.5f) + m[1] * (y + 0.5f) + m[2] - 0.5f, fy = m[3] * (x + 0.5f) + m[4] * (y + 0.5f) + m[5] - 0.5f;
        sx = (int)rintf(fx);
        sy = (int)rintf(fy);
        return fabsf(fx - sx) < 1e-3f && fabsf(fy - sy) < 1e-3f && sx >= 0 && sx < w && sy >= 0 && sy < h;
    };
    // The linear part is integer, so the map is whole-pixel everywhere when it is at the corners.
    int sx0, sy0, sx, sy;
    if (!source(0, 0, sx0, sy0)) return false;
    for (auto [x, y] : {std::pair{ow - 1, 0}, {0, oh - 1}, {ow - 1, oh - 1}})
        if (!source(x, y, sx, sy)) return false;
    const int ax = (int)m[0], bx = (int)m[1], ay = (int)m[3], by = (int)m[4];
    const size_t plane = (size_t)oh * ow;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const uint8_t *px = img + ((size_t)(sy0 + ay * x + by * y) * w + (sx0 + ax * x + bx * y)) * 3;
            for (int c = 0; c < 3; c++) {
                const float v = table[c][px[job.bgr ? 2 - c : c]];
                if (job.nhwc) job.dst[((size_t)i * plane + (size_t)y * ow + x) * 3 + c] = v;
                else job.dst[((size_t)i * 3 + c) * plane + (size_t)y * ow + x] = v;
            }
        }
    return true;
}

void augment_range(const eb_aug_job &job, int begin, int end) {
    const int ow = job.out_w, oh = job.out_h;
    std::vector<float> buf((size_t)ow * oh * 3);
    // Output channel c's normalised value of each byte, by aug_store's expression.
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) table[c][v] = ((float)v * job.scale - job.mean[c]) / job.std[c];
    eb::AugPlan plan;
    for (int i = begin; i < end; i++) {
        const int64_t global = job.indices ? job.indices[i] : job.index_offset + i;
        eb::aug_plan(job, global, plan);
        const uint8_t *img = job.src + (size_t)i * job.in_h * job.in_w * 3;
        if (gather_whole_pixels(job, plan, table, img, i)) continue;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) eb::aug_sample(img, job.in_h, job.in_w, plan.m, x, y, &buf[((size_t)y * ow + x) * 3]);
        for (int p = 0; p < plan.n_post; p++) {
            float mean_grey = 0;
            if (plan.post[p].kind == EB_AUG_CONTRAST) {
                double s = 0;
                for (size_t q = 0; q < (size_t)ow * oh; q++) s += eb::grey(&buf[q * 3]);
                mean_grey = (float)(s / ((double)ow * oh));
            }
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) eb::aug_post_pixel(plan.post[p], x, y, mean_grey, &buf[((size_t)y * ow + x) * 3]);
        }
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) eb::aug_store(job, i, x, y, &buf[((size_t)y * ow + x) * 3]);
    }
}

int cpu_augment(void *, const eb_aug_job *job) {
    int threads = job->threads > 0 ? job->threads : eb_cpu_get_threads();
    threads = std::max(1, std::min(threads, job->n));
    if (threads == 1) {
        augment_range(*job, 0, job->n);
        return EB_OK;
    }
    std::vector<std::thread> pool;
    const int per = (job->n + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        const int b = t * per, e = std::min(job->n, b + per);
        if (b < e) pool.emplace_back(augment_range, std::cref(*job), b, e);
    }
    for (auto &th : pool) th.join();
    return EB_OK;
}

int cpu_sync(void *) { return EB_OK; }

const eb_backend_i cpu_iface = {
    .abi_version = EB_BACKEND_ABI_VERSION,
    .name = cpu_name,
    .device_name = cpu_device_name,
    .device_memory = cpu_device_memory,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .fill = cpu_fill,
    .gemm = cpu_gemm,
    .bias_act = cpu_bias_act,
    .act_bias_grad = cpu_act_bias_grad,
    .add = cpu_add,
    .gather = cpu_gather,
    .gather_i32 = cpu_gather_i32,
    .softmax_xent = cpu_softmax_xent,
    .mse = cpu_mse,
    .softmax_xent_mix = cpu_softmax_xent_mix,
    .mix = cpu_mix,
    .class_stats = cpu_class_stats,
    .isda_xent = cpu_isda_xent,
    .sgd = cpu_sgd,
    .adam = cpu_adam,
    .augment = cpu_augment,
    .synchronize = cpu_sync,
};

}  // namespace

extern "C" void eb_cpu_set_threads(int threads) {
    g_threads = threads > 0 ? threads : (int)std::max(1u, std::thread::hardware_concurrency());
#ifdef EB_USE_EIGEN
    Eigen::setNbThreads(g_threads);
#else
    openblas_set_num_threads(g_threads);
#endif
}

extern "C" int eb_cpu_get_threads(void) {
    if (g_threads == 0) eb_cpu_set_threads(0);
    return g_threads;
}

extern "C" int eb_cpu_backend_init(int threads, eb_backend *out) {
    if (threads > 0 || g_threads == 0) eb_cpu_set_threads(threads);
    out->iface = &cpu_iface;
    out->ctx = nullptr;
    return EB_OK;
}
