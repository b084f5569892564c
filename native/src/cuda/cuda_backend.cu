// The CUDA backend: every op of eb_backend_i as a kernel, in a shared library that the
// addon loads at run time (registry.cpp), so machines without CUDA still load the addon.
// No cuBLAS is available where this is built, so GEMM is a tiled shared-memory kernel.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "../core/aug_kernel.h"
#include "../core/ops_kernel.h"
#include "eb_backend.h"

namespace {

struct CudaCtx {
    int device = 0;
    char name[320] = {0};
    size_t memory = 0;
    cudaStream_t stream = nullptr;
};

int check(cudaError_t e) {
    return e == cudaSuccess ? EB_OK : (e == cudaErrorMemoryAllocation ? EB_ERR_ALLOC : EB_ERR_DEVICE);
}
int launched() { return check(cudaGetLastError()); }

CudaCtx *C(void *ctx) { return static_cast<CudaCtx *>(ctx); }
unsigned blocks(size_t n, unsigned t = 256) { return (unsigned)((n + t - 1) / t); }

const char *cu_name(void *) { return "cuda"; }
const char *cu_device_name(void *ctx) { return C(ctx)->name; }
size_t cu_device_memory(void *ctx) { return C(ctx)->memory; }
void cu_destroy(void *ctx) {
    if (C(ctx)->stream) cudaStreamDestroy(C(ctx)->stream);
    delete C(ctx);
}

void *cu_alloc(void *ctx, size_t bytes) {
    cudaSetDevice(C(ctx)->device);
    void *p = nullptr;
    return cudaMalloc(&p, bytes ? bytes : 16) == cudaSuccess ? p : nullptr;
}
void cu_release(void *ctx, void *p) { cudaFree(p); }
int cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, C(ctx)->stream));
}
int cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
    const int st = check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, C(ctx)->stream));
    return st != EB_OK ? st : check(cudaStreamSynchronize(C(ctx)->stream));
}

__global__ void fill_kernel(float *d, float v, size_t n) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) d[i] = v;
}
int cu_fill(void *ctx, float *d, float v, size_t n) {
    if (!n) return EB_OK;
    fill_kernel<<<blocks(n), 256, 0, C(ctx)->stream>>>(d, v, n);
    return launched();
}

// 64x64 output tile per block, 16-deep K slices in shared memory, 4x4 outputs per thread.
constexpr int TM = 64, TN = 64, TK = 16;

__global__ void gemm_kernel(int ta, int tb, int m, int n, int k, float alpha, const float *__restrict__ a,
                            const float *__restrict__ b, float beta, float *__restrict__ c) {
    __shared__ float as[TK][TM + 1];
    __shared__ float bs[TK][TN + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
    float acc[4][4] = {{0}};
    for (int k0 = 0; k0 < k; k0 += TK) {
        // Load so that consecutive threads read consecutive addresses in either layout.
        for (int r = 0; r < 4; r++) {
            const int e = tid + r * 256;
            int i, kk;
            if (!ta) { i = e / TK; kk = e % TK; } else { kk = e / TM; i = e % TM; }
            const int gi = row0 + i, gk = k0 + kk;
            as[kk][i] = (gi < m && gk < k) ? (ta ? a[(size_t)gk * m + gi] : a[(size_t)gi * k + gk]) : 0.0f;
            int j;
            if (!tb) { kk = e / TN; j = e % TN; } else { j = e / TK; kk = e % TK; }
            const int gj = col0 + j, gk2 = k0 + kk;
            bs[kk][j] = (gj < n && gk2 < k) ? (tb ? b[(size_t)gj * k + gk2] : b[(size_t)gk2 * n + gj]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TK; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                av[q] = as[kk][ty + 16 * q];
                bv[q] = bs[kk][tx + 16 * q];
            }
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[p][q] = fmaf(av[p], bv[q], acc[p][q]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int i = row0 + ty + 16 * p, j = col0 + tx + 16 * q;
            if (i < m && j < n) {
                float *dst = c + (size_t)i * n + j;
                *dst = alpha * acc[p][q] + (beta == 0.0f ? 0.0f : beta * *dst);
            }
        }
}

int cu_gemm(void *ctx, int ta, int tb, int m, int n, int k, float alpha, const float *a, const float *b, float beta,
            float *c) {
    dim3 grid((n + TN - 1) / TN, (m + TM - 1) / TM);
    gemm_kernel<<<grid, 256, 0, C(ctx)->stream>>>(ta, tb, m, n, k, alpha, a, b, beta, c);
    return launched();
}

__global__ void bias_act_kernel(float *y, const float *bias, int m, int n, int relu) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)m * n) return;
    const float v = y[i] + bias[i % n];
    y[i] = relu ? fmaxf(v, 0.0f) : v;
}
int cu_bias_act(void *ctx, float *y, const float *bias, int m, int n, int relu) {
    bias_act_kernel<<<blocks((size_t)m * n), 256, 0, C(ctx)->stream>>>(y, bias, m, n, relu);
    return launched();
}

// One thread per column: masks its column of dy and sums it; reads are coalesced across threads.
__global__ void act_bias_grad_kernel(float *dy, const float *y, int m, int n, int relu, float *db) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    float s = 0.0f;
    for (int i = 0; i < m; i++) {
        const size_t q = (size_t)i * n + j;
        float g = dy[q];
        if (relu && !(y[q] > 0.0f)) dy[q] = g = 0.0f;
        s += g;
    }
    db[j] = s;
}
int cu_act_bias_grad(void *ctx, float *dy, const float *y, int m, int n, int relu, float *db) {
    act_bias_grad_kernel<<<blocks(n, 128), 128, 0, C(ctx)->stream>>>(dy, y, m, n, relu, db);
    return launched();
}

__global__ void add_kernel(float *y, const float *x, size_t n) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}
int cu_add(void *ctx, float *y, const float *x, size_t n) {
    if (!n) return EB_OK;
    add_kernel<<<blocks(n), 256, 0, C(ctx)->stream>>>(y, x, n);
    return launched();
}

__global__ void gather_kernel(float *dst, const float *src, const int32_t *idx, int rows, int cols) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * cols) return;
    const size_t r = i / cols, c = i % cols;
    dst[i] = src[(size_t)idx[r] * cols + c];
}
int cu_gather(void *ctx, float *dst, const float *src, const int32_t *idx, int rows, int cols) {
    gather_kernel<<<blocks((size_t)rows * cols), 256, 0, C(ctx)->stream>>>(dst, src, idx, rows, cols);
    return launched();
}

__global__ void gather_i32_kernel(int32_t *dst, const int32_t *src, const int32_t *idx, int rows) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows) dst[i] = src[idx[i]];
}
int cu_gather_i32(void *ctx, int32_t *dst, const int32_t *src, const int32_t *idx, int rows) {
    gather_i32_kernel<<<blocks(rows), 256, 0, C(ctx)->stream>>>(dst, src, idx, rows);
    return launched();
}

// Sums one value per thread into acc with one atomic per block.
__device__ void block_sum_to(float v, float *acc) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x + 31) / 32 ? part[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) atomicAdd(acc, v);
    }
    __syncthreads();
}

__global__ void softmax_xent_kernel(const float *logits, const int32_t *labels, int m, int c, float *dl, float *acc) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float loss = 0.0f, correct = 0.0f;
    if (i < m) {
        int ok = 0;
        loss = eb::softmax_xent_row(logits + (size_t)i * c, c, labels[i], 1.0f / m, dl + (size_t)i * c, &ok);
        correct = (float)ok;
    }
    block_sum_to(loss, acc);
    block_sum_to(correct, acc + 1);
}
int cu_softmax_xent(void *ctx, const float *logits, const int32_t *labels, int m, int c, float *dl, float *acc) {
    softmax_xent_kernel<<<blocks(m, 128), 128, 0, C(ctx)->stream>>>(logits, labels, m, c, dl, acc);
    return launched();
}

__global__ void mse_kernel(const float *pred, const float *target, size_t count, float scale, float *dpred, float *acc) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    float sq = 0.0f;
    if (i < count) {
        const float e = pred[i] - target[i];
        sq = e * e;
        dpred[i] = scale * e;
    }
    block_sum_to(sq, acc);
}
int cu_mse(void *ctx, const float *pred, const float *target, int m, int n, float *dpred, float *acc) {
    const size_t count = (size_t)m * n;
    mse_kernel<<<blocks(count), 256, 0, C(ctx)->stream>>>(pred, target, count, 2.0f / (float)count, dpred, acc);
    return launched();
}

__global__ void softmax_xent_mix_kernel(const float *logits, const int32_t *labels, const int32_t *labels2, float lam, int m,
                                        int c, float *dl, float *acc) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float loss = 0.0f, correct = 0.0f;
    if (i < m) {
        int ok = 0;
        loss = eb::softmax_xent_mix_row(logits + (size_t)i * c, c, labels[i], labels2[i], lam, 1.0f / m, dl + (size_t)i * c, &ok);
        correct = (float)ok;
    }
    block_sum_to(loss, acc);
    block_sum_to(correct, acc + 1);
}
int cu_softmax_xent_mix(void *ctx, const float *logits, const int32_t *labels, const int32_t *labels2, float lam, int m, int c,
                        float *dl, float *acc) {
    softmax_xent_mix_kernel<<<blocks(m, 128), 128, 0, C(ctx)->stream>>>(logits, labels, labels2, lam, m, c, dl, acc);
    return launched();
}

__global__ void mix_kernel(float *y, const float *x, float lam, size_t n) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = lam * y[i] + (1.0f - lam) * x[i];
}
int cu_mix(void *ctx, float *y, const float *x, float lam, size_t n) {
    mix_kernel<<<blocks(n), 256, 0, C(ctx)->stream>>>(y, x, lam, n);
    return launched();
}

// The batch mean of feature p over the rows of class k, and their number.
__device__ float class_batch_mean(const float *f, const int32_t *labels, int m, int d, int k, int p, int *n) {
    float s = 0.0f;
    int cnt = 0;
    for (int i = 0; i < m; i++)
        if (labels[i] == k) { s += f[(size_t)i * d + p]; cnt++; }
    *n = cnt;
    return cnt ? s / cnt : 0.0f;
}
// One thread per covariance entry (k, p, q); reads the old means, so the means are updated after.
__global__ void class_cov_kernel(const float *f, const int32_t *labels, int m, int d, int c, const float *mean, float *cov,
                                 const float *count) {
    const size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (e >= (size_t)c * d * d) return;
    const int k = (int)(e / ((size_t)d * d)), p = (int)(e / d % d), q = (int)(e % d);
    int n = 0;
    const float mp = class_batch_mean(f, labels, m, d, k, p, &n), mq = class_batch_mean(f, labels, m, d, k, q, &n);
    if (n == 0) return;
    float cb = 0.0f;
    for (int i = 0; i < m; i++)
        if (labels[i] == k) cb += (f[(size_t)i * d + p] - mp) * (f[(size_t)i * d + q] - mq);
    cov[e] = eb::merged_cov(cov[e], count[k], (float)n, cb / n, mean[(size_t)k * d + p], mean[(size_t)k * d + q], mp, mq);
}
// One thread per mean entry (k, p); the last feature's thread of each class also updates its count.
__global__ void class_mean_kernel(const float *f, const int32_t *labels, int m, int d, int c, float *mean, float *count) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= c * d) return;
    const int k = e / d, p = e % d;
    int n = 0;
    const float mb = class_batch_mean(f, labels, m, d, k, p, &n);
    if (n == 0) return;
    const float w = (float)n / (count[k] + (float)n);
    mean[e] = mean[e] * (1.0f - w) + mb * w;
}
__global__ void class_count_kernel(const int32_t *labels, int m, int c, float *count) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= c) return;
    int n = 0;
    for (int i = 0; i < m; i++) n += labels[i] == k;
    count[k] += (float)n;
}
int cu_class_stats(void *ctx, const float *f, const int32_t *labels, int m, int d, int c, float *mean, float *cov, float *count) {
    cudaStream_t st = C(ctx)->stream;
    class_cov_kernel<<<blocks((size_t)c * d * d), 256, 0, st>>>(f, labels, m, d, c, mean, cov, count);
    class_mean_kernel<<<blocks((size_t)c * d), 256, 0, st>>>(f, labels, m, d, c, mean, count);
    class_count_kernel<<<blocks(c), 256, 0, st>>>(labels, m, c, count);
    return launched();
}

__global__ void isda_a_kernel(const float *w, const float *cov, int c, int d, float *a) {
    const size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (e >= (size_t)c * c * d) return;
    a[e] = eb::isda_a_entry(w, cov, d, (int)(e / ((size_t)c * d)), (int)(e / d % c), (int)(e % d));
}
__global__ void isda_sigma_kernel(const float *w, const float *a, float ratio, int c, int d, float *sig) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < c * c) sig[e] = eb::isda_sigma_entry(w, a, ratio, c, d, e / c, e % c);
}
__global__ void isda_xent_kernel(const float *logits, const int32_t *labels, const float *sig, int m, int c, float *dl, float *acc) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float loss = 0.0f, correct = 0.0f;
    if (i < m) {
        int ok = 0;
        loss = eb::isda_xent_row(logits + (size_t)i * c, sig + (size_t)labels[i] * c, c, labels[i], 1.0f / m, dl + (size_t)i * c, &ok);
        correct = (float)ok;
    }
    block_sum_to(loss, acc);
    block_sum_to(correct, acc + 1);
}
// G[y][j]: dlogits summed over the rows of class y, in row order (as the CPU sums them).
__global__ void isda_g_kernel(const float *dl, const int32_t *labels, int m, int c, float *g) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= c * c) return;
    const int y = e / c, j = e % c;
    float s = 0.0f;
    for (int i = 0; i < m; i++)
        if (labels[i] == y) s += dl[(size_t)i * c + j];
    g[e] = s;
}
__global__ void isda_dw_kernel(const float *g, const float *a, float ratio, int c, int d, float *dw) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < c * d) dw[e] = eb::isda_dw_entry(g, a, ratio, c, d, e / d, e % d);
}
int cu_isda_xent(void *ctx, const float *logits, const int32_t *labels, const float *w, const float *cov, float ratio, int m,
                 int c, int d, float *scratch, float *dl, float *dw, float *acc) {
    cudaStream_t st = C(ctx)->stream;
    float *a = scratch, *sig = a + (size_t)c * c * d, *g = sig + (size_t)c * c;
    isda_a_kernel<<<blocks((size_t)c * c * d), 256, 0, st>>>(w, cov, c, d, a);
    isda_sigma_kernel<<<blocks((size_t)c * c), 256, 0, st>>>(w, a, ratio, c, d, sig);
    isda_xent_kernel<<<blocks(m, 128), 128, 0, st>>>(logits, labels, sig, m, c, dl, acc);
    isda_g_kernel<<<blocks((size_t)c * c), 256, 0, st>>>(dl, labels, m, c, g);
    isda_dw_kernel<<<blocks((size_t)c * d), 256, 0, st>>>(g, a, ratio, c, d, dw);
    return launched();
}

__global__ void sgd_kernel(float *w, const float *g, float *v, size_t n, float lr, float mom, float wd, int nesterov) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float gi = g[i] + wd * w[i];
    const float vi = mom * v[i] + gi;
    v[i] = vi;
    w[i] -= lr * (nesterov ? gi + mom * vi : vi);
}
int cu_sgd(void *ctx, float *w, const float *g, float *v, size_t n, float lr, float mom, float wd, int nesterov) {
    sgd_kernel<<<blocks(n), 256, 0, C(ctx)->stream>>>(w, g, v, n, lr, mom, wd, nesterov);
    return launched();
}

__global__ void adam_kernel(float *w, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                            float wd, float c1, float c2) {
    const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float mi = b1 * m[i] + (1.0f - b1) * g[i];
    const float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * w[i]);
}
int cu_adam(void *ctx, float *w, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
            float wd, int t) {
    // Bias corrections on the host, in the same float arithmetic as the CPU backend.
    const float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    adam_kernel<<<blocks(n), 256, 0, C(ctx)->stream>>>(w, g, m, v, n, lr, b1, b2, eps, wd, c1, c2);
    return launched();
}

struct AugParams {
    eb_aug_job job;  // src and dst are device pointers here
    eb_aug_op ops[EB_AUG_MAX_OPS];
};

// One block per image: the plan is built once in shared memory, the pixels go through a
// float scratch image in global memory so contrast can take its mean between passes.
__global__ void augment_kernel(AugParams prm, float *scratch) {
    __shared__ eb::AugPlan plan;
    __shared__ float red[32];
    eb_aug_job job = prm.job;
    job.ops = prm.ops;
    const int i = blockIdx.x;
    const int w = job.out_w, h = job.out_h, npx = w * h;
    if (threadIdx.x == 0) eb::aug_plan(job, job.indices ? job.indices[i] : job.index_offset + i, plan);
    __syncthreads();
    const uint8_t *img = job.src + (size_t)i * job.in_h * job.in_w * 3;
    float *buf = scratch + (size_t)i * npx * 3;
    for (int q = threadIdx.x; q < npx; q += blockDim.x) eb::aug_sample(img, job.in_h, job.in_w, plan.m, q % w, q / w, buf + q * 3);
    __syncthreads();
    for (int p = 0; p < plan.n_post; p++) {
        float mean_grey = 0.0f;
        if (plan.post[p].kind == EB_AUG_CONTRAST) {
            float s = 0.0f;
            for (int q = threadIdx.x; q < npx; q += blockDim.x) s += eb::grey(buf + q * 3);
            for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
            if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
            __syncthreads();
            if (threadIdx.x == 0) {
                float t = 0.0f;
                for (int k = 0; k < (int)(blockDim.x + 31) / 32; k++) t += red[k];
                red[0] = t / npx;
            }
            __syncthreads();
            mean_grey = red[0];
        }
        for (int q = threadIdx.x; q < npx; q += blockDim.x) eb::aug_post_pixel(plan.post[p], q % w, q / w, mean_grey, buf + q * 3);
        __syncthreads();
    }
    for (int q = threadIdx.x; q < npx; q += blockDim.x) eb::aug_store(job, i, q % w, q / w, buf + q * 3);
}

int cu_augment(void *ctx, const eb_aug_job *job) {
    if (job->n_ops > EB_AUG_MAX_OPS) return EB_ERR_ARG;
    const cudaStream_t s = C(ctx)->stream;
    const size_t in_bytes = (size_t)job->n * job->in_h * job->in_w * 3;
    const size_t out_floats = (size_t)job->n * job->out_h * job->out_w * 3;
    uint8_t *src = nullptr;
    float *dst = nullptr, *scratch = nullptr;
    int64_t *indices = nullptr;
    int st = check(cudaMalloc(&src, in_bytes));
    if (st == EB_OK && job->indices) {
        st = check(cudaMalloc(&indices, sizeof(int64_t) * job->n));
        if (st == EB_OK)
            st = check(cudaMemcpyAsync(indices, job->indices, sizeof(int64_t) * job->n, cudaMemcpyHostToDevice, s));
    }
    if (st == EB_OK) st = check(cudaMalloc(&dst, out_floats * sizeof(float)));
    if (st == EB_OK) st = check(cudaMalloc(&scratch, out_floats * sizeof(float)));
    if (st == EB_OK) st = check(cudaMemcpyAsync(src, job->src, in_bytes, cudaMemcpyHostToDevice, s));
    if (st == EB_OK) {
        AugParams prm;
        prm.job = *job;
        prm.job.src = src;
        prm.job.dst = dst;
        prm.job.indices = indices;
        if (job->n_ops > 0) std::memcpy(prm.ops, job->ops, sizeof(eb_aug_op) * job->n_ops);
        augment_kernel<<<job->n, 256, 0, s>>>(prm, scratch);
        st = launched();
    }
    if (st == EB_OK) st = check(cudaMemcpyAsync(job->dst, dst, out_floats * sizeof(float), cudaMemcpyDeviceToHost, s));
    if (st == EB_OK) st = check(cudaStreamSynchronize(s));
    cudaFree(src);
    cudaFree(dst);
    cudaFree(scratch);
    cudaFree(indices);
    return st;
}

int cu_sync(void *ctx) { return check(cudaStreamSynchronize(C(ctx)->stream)); }

const eb_backend_i cuda_iface = {
    .abi_version = EB_BACKEND_ABI_VERSION,
    .name = cu_name,
    .device_name = cu_device_name,
    .device_memory = cu_device_memory,
    .destroy = cu_destroy,
    .alloc = cu_alloc,
    .release = cu_release,
    .upload = cu_upload,
    .download = cu_download,
    .fill = cu_fill,
    .gemm = cu_gemm,
    .bias_act = cu_bias_act,
    .act_bias_grad = cu_act_bias_grad,
    .add = cu_add,
    .gather = cu_gather,
    .gather_i32 = cu_gather_i32,
    .softmax_xent = cu_softmax_xent,
    .mse = cu_mse,
    .softmax_xent_mix = cu_softmax_xent_mix,
    .mix = cu_mix,
    .class_stats = cu_class_stats,
    .isda_xent = cu_isda_xent,
    .sgd = cu_sgd,
    .adam = cu_adam,
    .augment = cu_augment,
    .synchronize = cu_sync,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) int eb_cuda_backend_init(int device, eb_backend *out, char *err,
                                                                           size_t err_len) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(err, err_len, "no usable CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
        return EB_ERR_UNSUPPORTED;
    }
    if (device < 0 || device >= count) {
        snprintf(err, err_len, "CUDA device %d does not exist (%d found)", device, count);
        return EB_ERR_ARG;
    }
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess || (e = cudaSetDevice(device)) != cudaSuccess) {
        snprintf(err, err_len, "CUDA device %d failed to start: %s", device, cudaGetErrorString(e));
        return EB_ERR_DEVICE;
    }
    auto *ctx = new CudaCtx();
    ctx->device = device;
    snprintf(ctx->name, sizeof ctx->name, "%.256s (sm_%d%d)", prop.name, prop.major, prop.minor);
    ctx->memory = prop.totalGlobalMem;
    if ((e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(err, err_len, "could not create a CUDA stream: %s", cudaGetErrorString(e));
        delete ctx;
        return EB_ERR_DEVICE;
    }
    out->iface = &cuda_iface;
    out->ctx = ctx;
    return EB_OK;
}
