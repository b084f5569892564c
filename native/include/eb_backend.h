/* embaug compute backends: the C ABI every backend implements.
 *
 * A backend is a table of functions over an opaque context, in the manner of ggml's
 * ggml_backend_i. Buffers are opaque device pointers owned by the backend; the core
 * (mlp.cpp) only composes these ops, so a new backend adds files and edits nothing else.
 * All matrices are row-major float32. Every op returns an eb_status. Backends fill the
 * table with designated initialisers, so an entry cannot be wired to the wrong op. */
#ifndef EB_BACKEND_H
#define EB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "eb_aug.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the table changes, so a CUDA library built against another
 * version is refused at load instead of crashing. */
#define EB_BACKEND_ABI_VERSION 5

typedef enum eb_status {
    EB_OK = 0,
    EB_ERR_ALLOC = 1,     /* out of (device) memory */
    EB_ERR_DEVICE = 2,    /* the device or its runtime failed */
    EB_ERR_ARG = 3,       /* an argument the caller should have checked */
    EB_ERR_UNSUPPORTED = 4,
    EB_ERR_CANCELLED = 5,
    EB_ERR_NONFINITE = 6  /* a loss or gradient became NaN or infinite */
} eb_status;

typedef struct eb_backend_i {
    int abi_version;
    const char *(*name)(void *ctx);
    /* Human-readable device name and memory in bytes (0 when it is host memory). */
    const char *(*device_name)(void *ctx);
    size_t (*device_memory)(void *ctx);
    void (*destroy)(void *ctx);

    void *(*alloc)(void *ctx, size_t bytes);
    void (*release)(void *ctx, void *p);
    int (*upload)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*download)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*fill)(void *ctx, float *dst, float value, size_t n);

    /* C[m,n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; A, B, C contiguous. */
    int (*gemm)(void *ctx, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, const float *b, float beta, float *c);
    /* y[i,:] += bias, then ReLU in place when relu != 0. */
    int (*bias_act)(void *ctx, float *y, const float *bias, int m, int n, int relu);
    /* dy *= (y > 0) when relu != 0, then dbias = column sums of dy. */
    int (*act_bias_grad)(void *ctx, float *dy, const float *y, int m, int n, int relu, float *dbias);
    /* y += x, elementwise. */
    int (*add)(void *ctx, float *y, const float *x, size_t n);
    /* dst[i,:] = src[idx[i],:] for i < rows; idx lives on the device. */
    int (*gather)(void *ctx, float *dst, const float *src, const int32_t *idx, int rows, int cols);
    int (*gather_i32)(void *ctx, int32_t *dst, const int32_t *src, const int32_t *idx, int rows);

    /* Mean softmax cross-entropy over m rows of c logits: dlogits = (softmax - onehot) / m;
     * acc[0] += summed loss, acc[1] += number of rows whose argmax equals the label. */
    int (*softmax_xent)(void *ctx, const float *logits, const int32_t *labels, int m, int c,
                        float *dlogits, float *acc);
    /* Mean squared error over m*n elements: dpred = 2 (pred - target) / (m n);
     * acc[0] += summed squared error. */
    int (*mse)(void *ctx, const float *pred, const float *target, int m, int n, float *dpred, float *acc);

    /* Mixup's loss: per row lam * xent(labels) + (1 - lam) * xent(labels2), gradients and
     * acc as softmax_xent (a row counts as correct for its heavier label). */
    int (*softmax_xent_mix)(void *ctx, const float *logits, const int32_t *labels, const int32_t *labels2, float lam,
                            int m, int c, float *dlogits, float *acc);
    /* y = lam * y + (1 - lam) * x, elementwise. */
    int (*mix)(void *ctx, float *y, const float *x, float lam, size_t n);
    /* Online per-class statistics of features f [m, d] (ISDA's estimator): mean [c, d],
     * covariance [c, d, d] and count [c] updated with the rows of each class. */
    int (*class_stats)(void *ctx, const float *f, const int32_t *labels, int m, int d, int c, float *mean, float *cov,
                       float *count);
    /* ISDA's loss: softmax cross-entropy of logits + σ[label] (see ops_kernel.h), with w [c, d]
     * the last layer's weights and cov the class covariances. Writes dlogits, the gradient σ
     * adds to w into dw [c, d] (overwritten), acc as softmax_xent; scratch holds c*c*(d + 2). */
    int (*isda_xent)(void *ctx, const float *logits, const int32_t *labels, const float *w, const float *cov,
                     float ratio, int m, int c, int d, float *scratch, float *dlogits, float *dw, float *acc);

    /* v = momentum v + (g + wd w); w -= lr (nesterov ? g + wd w + momentum v : v). */
    int (*sgd)(void *ctx, float *w, const float *g, float *v, size_t n, float lr, float momentum,
               float weight_decay, int nesterov);
    /* Adam with decoupled weight decay (AdamW); t is the 1-based step. */
    int (*adam)(void *ctx, float *w, const float *g, float *m, float *v, size_t n, float lr,
                float beta1, float beta2, float eps, float weight_decay, int t);

    /* (optional) Pixel augmentation of a batch already on the host; NULL = the CPU one runs. */
    int (*augment)(void *ctx, const eb_aug_job *job);
    int (*synchronize)(void *ctx);
} eb_backend_i;

typedef struct eb_backend {
    const eb_backend_i *iface;
    void *ctx;
} eb_backend;

/* Entry point a backend library exports (the CUDA one is loaded with dlopen). Returns
 * EB_OK and fills *out, or an error with a sentence in err (size err_len). */
typedef int (*eb_backend_init_fn)(int device, eb_backend *out, char *err, size_t err_len);

int eb_cpu_backend_init(int threads, eb_backend *out);
void eb_cpu_set_threads(int threads);
int eb_cpu_get_threads(void);
/* For each query row of the unit rows x [n, d] (the nq rows listed in queries, or every row
 * when queries is NULL), the k other rows of x of largest dot product, best first, into
 * out_idx and out_sim [nq, k] (-1 and -inf where fewer than k others exist). EB_OK,
 * EB_ERR_ARG (a query outside x), or EB_ERR_CANCELLED. */
int eb_cpu_nearest_rows(const float *x, int64_t n, int d, int k, const int32_t *queries, int64_t nq, int32_t *out_idx,
                        float *out_sim, const volatile int *cancel);
/* The duplicate search's detail similarity of each of m pairs of 32×32 grey images (grey [n, 1024]
 * bytes; pairs [m, 2] indices into it; mirror [m]: compare b mirrored) into out [m], on up to
 * `threads` threads. EB_OK, EB_ERR_ARG (an index outside grey), EB_ERR_ALLOC, or EB_ERR_CANCELLED. */
int eb_cpu_detail_similarity(const uint8_t *grey, int64_t n, const int32_t *pairs, const uint8_t *mirror, int64_t m, int threads,
                             double *out, const volatile int *cancel);
/* Measured single-precision FMA throughput of this CPU with the given threads (GFLOP/s). */
double eb_cpu_peak_gflops(int threads, double seconds);
/* The mean and covariance (ddof 0 or 1; the full symmetric d×d, doubles) of the n rows of
 * x [n, d]. EB_OK, or EB_ERR_ARG for fewer than ddof + 1 rows. */
int eb_cpu_mean_covariance(const float *x, int64_t n, int d, int ddof, double *mean, double *cov);
/* Rows of t [n, d] less mean, solved against the lower-triangular L (row-major d×d):
 * u = L⁻¹(t − mean), into u [n, d]. */
int eb_cpu_whiten_rows(const float *t, int64_t n, int d, const float *mean, const float *chol, float *u);

#ifdef __cplusplus
}
#endif

#endif
