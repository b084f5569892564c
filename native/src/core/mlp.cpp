#include "mlp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "aug_kernel.h"  // mix64
#include "simd.h"

namespace eb {

// Propagates a failed status from a helper that already said what failed.
#define EB_TRY(expr)                       \
    do {                                   \
        int _st = (expr);                  \
        if (_st != EB_OK) return _st;      \
    } while (0)

// Calls one backend op; on failure remembers which, so the error names the op and backend.
#define EB_OP(op, ...)                                         \
    do {                                                       \
        int _st = be_.iface->op(be_.ctx, __VA_ARGS__);         \
        if (_st != EB_OK) return failed(_st, #op);             \
    } while (0)

namespace {

constexpr int kEvalRows = 1024;

// A device buffer freed with its backend: keeps every early return in train() leak-free.
template <typename T>
struct DevBuf {
    eb_backend be;
    T *p = nullptr;
    DevBuf(eb_backend b, size_t count) : be(b) {
        p = count ? static_cast<T *>(be.iface->alloc(be.ctx, count * sizeof(T))) : nullptr;
    }
    ~DevBuf() {
        if (p) be.iface->release(be.ctx, p);
    }
    DevBuf(const DevBuf &) = delete;
    DevBuf &operator=(const DevBuf &) = delete;
};

// A training input as the backend reads it. Where the backend computes in host memory
// (device_memory 0: the CPU), the caller's array itself, read in place: a copy would hold each
// running training's data twice (a reproduction's head: 38 MB more; a data set of 100,000
// 2,048-wide embeddings in 3 views: 2.4 GB more). Elsewhere a device copy, which load() fills.
template <typename T>
struct DevInput {
    const bool in_place;
    DevBuf<T> copy;
    const T *host;
    size_t count;
    const T *p;
    DevInput(eb_backend b, const T *h, size_t n)
        : in_place(b.iface->device_memory(b.ctx) == 0), copy(b, in_place ? 0 : n), host(h), count(n), p(in_place ? h : copy.p) {}
    int load() const { return in_place || !count ? EB_OK : copy.be.iface->upload(copy.be.ctx, copy.p, host, count * sizeof(T)); }
};

float uniform01(uint64_t seed, uint64_t a, uint64_t b) {
    return (float)(mix64(seed ^ mix64(a * 0x9E3779B97F4A7C15ull + b)) >> 40) * (1.0f / 16777216.0f);
}

// Seeded Fisher-Yates with our own generator, so shuffles are the same on every platform.
void shuffle_epoch(uint64_t seed, int epoch, int64_t n, int views, std::vector<int32_t> &rows,
                   std::vector<int32_t> &samples) {
    samples.resize(n);
    rows.resize(n);
    for (int64_t i = 0; i < n; i++) samples[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)(mix64(seed ^ mix64(((uint64_t)epoch << 40) + (uint64_t)i)) % (uint64_t)(i + 1));
        std::swap(samples[i], samples[j]);
    }
    for (int64_t i = 0; i < n; i++) {
        int v = views > 1 ? (int)(uniform01(seed + 1, (uint64_t)epoch, (uint64_t)samples[i]) * views) : 0;
        if (v >= views) v = views - 1;
        rows[i] = (int32_t)(v * n + samples[i]);
    }
}

// A counter-based stream of uniforms in (0, 1), keyed like the shuffles.
struct KeyedUniforms {
    uint64_t seed, key, i = 0;
    float next() { return uniform01(seed, key, i++) + 0.5f / 16777216.0f; }
};

// Gamma(k, 1) by Marsaglia and Tsang, boosted for k < 1.
float gamma_draw(float k, KeyedUniforms &u) {
    if (k < 1.0f) return gamma_draw(k + 1.0f, u) * std::pow(u.next(), 1.0f / k);
    const float d = k - 1.0f / 3.0f, c = 1.0f / std::sqrt(9.0f * d);
    for (;;) {
        float x, v;
        do {
            x = std::sqrt(-2.0f * std::log(u.next())) * std::cos(6.283185307f * u.next());
            v = 1.0f + c * x;
        } while (v <= 0.0f);
        v = v * v * v;
        const float w = u.next();
        if (w < 1.0f - 0.0331f * x * x * x * x || std::log(w) < 0.5f * x * x + d * (1.0f - v + std::log(v))) return d * v;
    }
}

// dst [cols × rows] = srcᵀ, src [rows × cols] row-major.
void transpose(const float *src, size_t rows, size_t cols, float *dst) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}

}  // namespace

static const char *status_text(int st) {
    switch (st) {
    case EB_ERR_ALLOC: return "out of memory";
    case EB_ERR_DEVICE: return "device error";
    case EB_ERR_ARG: return "bad argument";
    case EB_ERR_UNSUPPORTED: return "unsupported";
    case EB_ERR_CANCELLED: return "cancelled";
    case EB_ERR_NONFINITE: return "non-finite value";
    default: return "unknown status";
    }
}

// Fills err from the op that failed, where the failing path did not say more itself; an
// error message is never empty.
struct Mlp::ErrorNamer {
    Mlp &m;
    std::string &err;
    ErrorNamer(Mlp &mlp, std::string &e) : m(mlp), err(e) { m.failed_op_ = nullptr; }
    ~ErrorNamer() {
        if (m.failed_op_ && err.empty())
            err = std::string("op '") + m.failed_op_ + "' failed on backend '" + m.backend_name() + "' (" +
                  status_text(m.failed_status_) + ")";
    }
};

int Mlp::failed(int st, const char *op) {
    failed_op_ = op;
    failed_status_ = st;
    return st;
}

struct Mlp::Workspace {
    int batch = 0;
    std::vector<float *> acts, dacts;
    float *xb = nullptr, *tb = nullptr, *acc = nullptr;
    int32_t *lb = nullptr;
    // Mixup's partner rows and labels, and the permutation that picks them.
    float *xb2 = nullptr;
    int32_t *lb2 = nullptr, *perm = nullptr;
};

Mlp::Mlp(eb_backend backend, std::vector<int> sizes, uint64_t seed, bool residual)
    : be_(backend), sizes_(std::move(sizes)), residual_(residual), in_major_(sizes_.size() > 2) {
    const size_t layers = sizes_.size() - 1;
    for (size_t l = 0; l < layers; l++) {
        const int in = sizes_[l], out = sizes_[l + 1];
        param_len_.push_back((size_t)out * in);
        param_len_.push_back((size_t)out);
    }
    // A constructor that throws gets no destructor call: release what was allocated first.
    try {
        init_params(seed);
    } catch (...) {
        release_all();
        throw;
    }
}

void Mlp::init_params(uint64_t seed) {
    const size_t layers = sizes_.size() - 1;
    std::vector<float> host;
    for (size_t t = 0; t < param_len_.size(); t++) {
        const size_t n = param_len_[t], bytes = n * sizeof(float);
        for (auto *v : {&params_, &grads_, &opt_m_, &opt_v_}) {
            v->push_back(static_cast<float *>(be_.iface->alloc(be_.ctx, bytes)));
            if (!v->back())
                throw Failure(EB_ERR_ALLOC, "out of memory on backend '" + std::string(backend_name()) + "' for " +
                                                std::to_string(bytes) + " bytes of parameters");
        }
        host.assign(n, 0.0f);
        const size_t layer = t / 2;
        const bool weight = t % 2 == 0, zero_last = residual_ && layer == layers - 1;
        if (weight && !zero_last) {
            // He (Kaiming) uniform for ReLU nets: U(-b, b) with b = sqrt(6 / fan_in).
            const float bound = std::sqrt(6.0f / (float)sizes_[layer]);
            for (size_t i = 0; i < n; i++) host[i] = (2.0f * uniform01(seed, t, i) - 1.0f) * bound;
        }
        if (t == 0) host = to_device_layout(0, host.data());
        if (be_.iface->upload(be_.ctx, params_[t], host.data(), bytes) != EB_OK ||
            be_.iface->fill(be_.ctx, opt_m_[t], 0.0f, n) != EB_OK || be_.iface->fill(be_.ctx, opt_v_[t], 0.0f, n) != EB_OK)
            throw Failure(EB_ERR_DEVICE, "initialising parameters failed on backend '" + std::string(backend_name()) + "'");
    }
}

Mlp::~Mlp() { release_all(); }

void Mlp::release_all() {
    for (auto *v : {&params_, &grads_, &opt_m_, &opt_v_}) {
        for (float *p : *v)
            if (p) be_.iface->release(be_.ctx, p);
        v->clear();
    }
    free_workspace();
    free_isda();
}

void Mlp::free_isda() {
    for (float **p : {&isda_mean_, &isda_cov_, &isda_count_, &isda_scratch_, &isda_dw_}) {
        if (*p) be_.iface->release(be_.ctx, *p);
        *p = nullptr;
    }
}

int Mlp::ensure_isda(int c, int d, std::string &err) {
    if (isda_mean_) return EB_OK;
    auto a = [&](size_t floats) { return static_cast<float *>(be_.iface->alloc(be_.ctx, floats * sizeof(float))); };
    isda_mean_ = a((size_t)c * d);
    isda_cov_ = a((size_t)c * d * d);
    isda_count_ = a((size_t)c);
    isda_scratch_ = a((size_t)c * c * (d + 2));
    isda_dw_ = a((size_t)c * d);
    if (!isda_mean_ || !isda_cov_ || !isda_count_ || !isda_scratch_ || !isda_dw_) {
        free_isda();
        err = "out of memory on backend '" + std::string(backend_name()) + "' for ISDA's class covariances";
        return EB_ERR_ALLOC;
    }
    EB_OP(fill, isda_mean_, 0.0f, (size_t)c * d);
    EB_OP(fill, isda_cov_, 0.0f, (size_t)c * d * d);
    EB_OP(fill, isda_count_, 0.0f, (size_t)c);
    return EB_OK;
}

void Mlp::free_workspace() {
    if (!ws_) return;
    for (float *p : ws_->acts)
        if (p) be_.iface->release(be_.ctx, p);
    for (float *p : ws_->dacts)
        if (p) be_.iface->release(be_.ctx, p);
    for (void *p : {(void *)ws_->xb, (void *)ws_->tb, (void *)ws_->acc, (void *)ws_->lb, (void *)ws_->xb2, (void *)ws_->lb2,
                    (void *)ws_->perm})
        if (p) be_.iface->release(be_.ctx, p);
    delete ws_;
    ws_ = nullptr;
}

int Mlp::ensure_workspace(int batch, std::string &err) {
    if (ws_ && ws_->batch >= batch) return EB_OK;
    free_workspace();
    ws_ = new Workspace();
    ws_->batch = batch;
    auto a = [&](size_t floats) { return static_cast<float *>(be_.iface->alloc(be_.ctx, floats * sizeof(float))); };
    for (size_t l = 1; l < sizes_.size(); l++) {
        ws_->acts.push_back(a((size_t)batch * sizes_[l]));
        ws_->dacts.push_back(a((size_t)batch * sizes_[l]));
    }
    ws_->xb = a((size_t)batch * sizes_.front());
    ws_->tb = a((size_t)batch * sizes_.back());
    ws_->acc = a(2);
    ws_->lb = static_cast<int32_t *>(be_.iface->alloc(be_.ctx, (size_t)batch * sizeof(int32_t)));
    ws_->xb2 = a((size_t)batch * sizes_.front());
    ws_->lb2 = static_cast<int32_t *>(be_.iface->alloc(be_.ctx, (size_t)batch * sizeof(int32_t)));
    ws_->perm = static_cast<int32_t *>(be_.iface->alloc(be_.ctx, (size_t)batch * sizeof(int32_t)));
    bool ok = ws_->xb && ws_->tb && ws_->acc && ws_->lb && ws_->xb2 && ws_->lb2 && ws_->perm;
    for (float *p : ws_->acts) ok = ok && p;
    for (float *p : ws_->dacts) ok = ok && p;
    if (!ok) {
        // No half-allocated workspace stays behind marked usable: the next call tries afresh.
        free_workspace();
        err = "out of memory on backend '" + std::string(backend_name()) + "' for the workspace of a batch of " +
              std::to_string(batch);
        return EB_ERR_ALLOC;
    }
    return EB_OK;
}

int Mlp::forward_batch(const float *xb, int bs) {
    const size_t layers = sizes_.size() - 1;
    const float *in = xb;
    for (size_t l = 0; l < layers; l++) {
        const int fi = sizes_[l], fo = sizes_[l + 1];
        float *y = ws_->acts[l];
        EB_OP(gemm, 0, l == 0 && in_major_ ? 0 : 1, bs, fo, fi, 1.0f, in, params_[2 * l], 0.0f, y);
        EB_OP(bias_act, y, params_[2 * l + 1], bs, fo, l + 1 < layers);
        in = y;
    }
    if (residual_) EB_OP(add, ws_->acts.back(), xb, (size_t)bs * sizes_.back());
    return EB_OK;
}

int Mlp::loss_batch(const Supervision &y, const void *yb, int bs, float *acc) {
    if (y.labels)
        EB_OP(softmax_xent, ws_->acts.back(), static_cast<const int32_t *>(yb), bs, sizes_.back(), ws_->dacts.back(), acc);
    else
        EB_OP(mse, ws_->acts.back(), static_cast<const float *>(yb), bs, sizes_.back(), ws_->dacts.back(), acc);
    return EB_OK;
}

int Mlp::backward_batch(const float *xb, int bs, const std::function<int(int)> &layer_done) {
    const int layers = (int)sizes_.size() - 1;
    for (int l = layers - 1; l >= 0; l--) {
        const int fi = sizes_[l], fo = sizes_[l + 1];
        float *dy = ws_->dacts[l];
        EB_OP(act_bias_grad, dy, ws_->acts[l], bs, fo, l + 1 < layers, grads_[2 * l + 1]);
        const float *in = l == 0 ? xb : ws_->acts[l - 1];
        if (l == 0 && in_major_) EB_OP(gemm, 1, 0, fi, fo, bs, 1.0f, in, dy, 0.0f, grads_[0]);
        else EB_OP(gemm, 1, 0, fo, fi, bs, 1.0f, dy, in, 0.0f, grads_[2 * l]);
        if (l > 0) EB_OP(gemm, 0, 0, bs, fi, fo, 1.0f, dy, params_[2 * l], 0.0f, ws_->dacts[l - 1]);
        if (layer_done) EB_TRY(layer_done(l));
    }
    return EB_OK;
}

int Mlp::update(int layer, float lr) {
    const OptimConfig &o = opt_;
    for (int t = 2 * layer; t < 2 * layer + 2; t++) {
        // Weight decay applies to weights only, as is usual; biases are not shrunk.
        const float wd = t % 2 == 0 ? o.weight_decay : 0.0f;
        if (o.kind == OptimConfig::ADAM)
            EB_OP(adam, params_[t], grads_[t], opt_m_[t], opt_v_[t], param_len_[t], lr, o.beta1, o.beta2, o.eps, wd,
                  (int)adam_t_);
        else
            EB_OP(sgd, params_[t], grads_[t], opt_m_[t], param_len_[t], lr, o.momentum, wd, o.nesterov);
    }
    return EB_OK;
}

int Mlp::evaluate(const float *x_dev, const void *y_dev, bool labels, int64_t n, double &loss, double &acc,
                  std::string &err) {
    float zero[2] = {0, 0}, host[2];
    EB_OP(upload, ws_->acc, zero, sizeof zero);
    Supervision s;
    if (labels) s.labels = static_cast<const int32_t *>(y_dev);
    for (int64_t start = 0; start < n; start += ws_->batch) {
        const int bs = (int)std::min<int64_t>(ws_->batch, n - start);
        EB_TRY(forward_batch(x_dev + start * sizes_.front(), bs));
        const void *yb = labels ? (const void *)(static_cast<const int32_t *>(y_dev) + start)
                                : (const void *)(static_cast<const float *>(y_dev) + start * sizes_.back());
        EB_TRY(loss_batch(s, yb, bs, ws_->acc));
    }
    EB_OP(download, host, ws_->acc, sizeof host);
    loss = labels ? host[0] / (double)n : host[0] / ((double)n * sizes_.back());
    acc = labels ? host[1] / (double)n : -1;
    if (!std::isfinite(loss)) {
        err = "held-out loss is not finite";
        return EB_ERR_NONFINITE;
    }
    return EB_OK;
}

int Mlp::train(const TrainData &d, const TrainConfig &cfg, const std::atomic<bool> &cancel,
               const std::function<void(const EpochStats &)> &on_epoch, std::string &err) {
    ErrorNamer namer(*this, err);
    opt_ = cfg.opt;
    const int in = sizes_.front(), out = sizes_.back();
    const int64_t n = d.y.n;
    const bool labels = d.y.labels != nullptr;
    // Held-out evaluation runs in chunks of the workspace's rows: at least kEvalRows, where
    // the forward GEMMs run near the BLAS peak (at 128 rows they reach about a third of it).
    EB_TRY(ensure_workspace(std::max(cfg.batch, d.val_x ? kEvalRows : 0), err));
    const bool mixup = cfg.mixup_alpha > 0, isda = cfg.isda_lambda > 0;
    if ((mixup || isda) && !labels) {
        err = std::string(mixup ? "mixup" : "ISDA") + " needs class labels, not regression targets";
        return EB_ERR_ARG;
    }
    if (mixup && isda) {
        err = "mixup and ISDA are alternatives: choose one";
        return EB_ERR_ARG;
    }
    const int layers = (int)sizes_.size() - 1, feat_dim = sizes_[layers - 1];
    if (isda) EB_TRY(ensure_isda(out, feat_dim, err));
    std::vector<int32_t> perm(cfg.batch);
    const DevInput<float> x(be_, d.x, (size_t)d.views * n * in);
    const DevInput<int32_t> lab(be_, d.y.labels, labels ? (size_t)n : 0);
    const DevInput<float> tgt(be_, d.y.targets, labels ? 0 : (size_t)n * out);
    DevBuf<int32_t> rows_dev(be_, (size_t)n), samples_dev(be_, (size_t)n);
    const int64_t vn = d.val_x ? d.val_y.n : 0;
    const DevInput<float> vx(be_, d.val_x, (size_t)vn * in);
    const DevInput<int32_t> vlab(be_, d.val_y.labels, labels ? (size_t)vn : 0);
    const DevInput<float> vtgt(be_, d.val_y.targets, labels ? 0 : (size_t)vn * out);
    if (!x.p || !rows_dev.p || !samples_dev.p || (labels ? !lab.p : !tgt.p) ||
        (vn && (!vx.p || (labels ? !vlab.p : !vtgt.p)))) {
        err = std::string("out of memory on backend '") + backend_name() + "' for the training set";
        return EB_ERR_ALLOC;
    }
    for (const int st : {x.load(), lab.load(), tgt.load(), vx.load(), vlab.load(), vtgt.load()})
        if (st != EB_OK) return failed(st, "upload");
    const int horizon = cfg.total_epochs > 0 ? cfg.total_epochs : cfg.first_epoch + cfg.epochs;
    std::vector<int32_t> rows, samples;
    Supervision batch_sup;
    batch_sup.labels = labels ? ws_->lb : nullptr;
    for (int e = cfg.first_epoch; e < cfg.first_epoch + cfg.epochs; e++) {
        const auto t0 = std::chrono::steady_clock::now();
        shuffle_epoch(cfg.seed, e, n, d.views, rows, samples);
        EB_OP(upload, rows_dev.p, rows.data(), (size_t)n * sizeof(int32_t));
        EB_OP(upload, samples_dev.p, samples.data(), (size_t)n * sizeof(int32_t));
        float zero[2] = {0, 0}, acc[2];
        EB_OP(upload, ws_->acc, zero, sizeof zero);
        float lr = opt_.lr;
        if (opt_.schedule == OptimConfig::COSINE) lr *= 0.5f * (1.0f + std::cos(3.14159265358979f * e / horizon));
        for (int64_t start = 0; start < n; start += cfg.batch) {
            if (cancel.load()) {
                err = "training was cancelled";
                return EB_ERR_CANCELLED;
            }
            const int bs = (int)std::min<int64_t>(cfg.batch, n - start);
            EB_OP(gather, ws_->xb, x.p, rows_dev.p + start, bs, in);
            if (labels) EB_OP(gather_i32, ws_->lb, lab.p, samples_dev.p + start, bs);
            else EB_OP(gather, ws_->tb, tgt.p, samples_dev.p + start, bs, out);
            float lam = 1.0f;
            if (mixup) {
                KeyedUniforms u{cfg.seed + 2, ((uint64_t)e << 32) + (uint64_t)(start / cfg.batch)};
                const float g1 = gamma_draw(cfg.mixup_alpha, u), g2 = gamma_draw(cfg.mixup_alpha, u);
                lam = g1 / (g1 + g2);
                for (int i = 0; i < bs; i++) perm[i] = i;
                for (int i = bs - 1; i > 0; i--) std::swap(perm[i], perm[(int)(u.next() * (i + 1)) % (i + 1)]);
                EB_OP(upload, ws_->perm, perm.data(), (size_t)bs * sizeof(int32_t));
                EB_OP(gather, ws_->xb2, ws_->xb, ws_->perm, bs, in);
                EB_OP(gather_i32, ws_->lb2, ws_->lb, ws_->perm, bs);
                EB_OP(mix, ws_->xb, ws_->xb2, lam, (size_t)bs * in);
            }
            EB_TRY(forward_batch(ws_->xb, bs));
            if (isda) {
                // The features ISDA augments are the last layer's input.
                const float *feats = layers >= 2 ? ws_->acts[layers - 2] : ws_->xb;
                const float ratio = cfg.isda_lambda * (float)e / (float)horizon;
                EB_OP(class_stats, feats, ws_->lb, bs, feat_dim, out, isda_mean_, isda_cov_, isda_count_);
                EB_OP(isda_xent, ws_->acts.back(), ws_->lb, params_[2 * (layers - 1)], isda_cov_, ratio, bs, out, feat_dim,
                      isda_scratch_, ws_->dacts.back(), isda_dw_, ws_->acc);
            } else if (mixup) {
                EB_OP(softmax_xent_mix, ws_->acts.back(), ws_->lb, ws_->lb2, lam, bs, out, ws_->dacts.back(), ws_->acc);
            } else {
                EB_TRY(loss_batch(batch_sup, labels ? (const void *)ws_->lb : (const void *)ws_->tb, bs, ws_->acc));
            }
            // Each layer is updated as soon as its gradients are complete and its weight has
            // done its part in the backward pass, while both are still in cache; the same
            // arithmetic as a step after the whole backward pass.
            adam_t_++;
            EB_TRY(backward_batch(ws_->xb, bs, [&](int l) {
                if (isda && l == layers - 1) EB_OP(add, grads_[2 * l], isda_dw_, (size_t)out * feat_dim);
                return update(l, lr);
            }));
        }
        EB_OP(download, acc, ws_->acc, sizeof acc);
        EpochStats st;
        st.epoch = e + 1;
        // Batch losses are means; the accumulator holds per-sample sums, so this is the epoch mean.
        st.loss = labels ? acc[0] / (double)n : acc[0] / ((double)n * out);
        st.accuracy = labels ? acc[1] / (double)n : -1;
        if (!std::isfinite(st.loss)) {
            err = "the training loss became " + std::string(std::isnan(st.loss) ? "NaN" : "infinite") + " in epoch " +
                  std::to_string(e + 1) + ": lower the learning rate or check the inputs";
            return EB_ERR_NONFINITE;
        }
        if (vn) EB_TRY(evaluate(vx.p, labels ? (const void *)vlab.p : (const void *)vtgt.p, labels, vn, st.val_loss,
                                st.val_accuracy, err));
        st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        on_epoch(st);
    }
    return EB_OK;
}

int Mlp::forward(const float *x, int64_t n, float *out, std::string &err) {
    ErrorNamer namer(*this, err);
    const int chunk = ws_ ? ws_->batch : 256;
    EB_TRY(ensure_workspace(chunk, err));
    const int in = sizes_.front(), fo = sizes_.back();
    for (int64_t start = 0; start < n; start += ws_->batch) {
        const int bs = (int)std::min<int64_t>(ws_->batch, n - start);
        EB_OP(upload, ws_->xb, x + start * in, (size_t)bs * in * sizeof(float));
        EB_TRY(forward_batch(ws_->xb, bs));
        EB_OP(download, out + start * fo, ws_->acts.back(), (size_t)bs * fo * sizeof(float));
    }
    return be_.iface->synchronize(be_.ctx);
}

int Mlp::gradients(const float *x, const Supervision &y, double &loss, std::vector<std::vector<float>> &grads,
                   std::string &err) {
    ErrorNamer namer(*this, err);
    const int bs = (int)y.n, in = sizes_.front(), out = sizes_.back();
    EB_TRY(ensure_workspace(bs, err));
    EB_OP(upload, ws_->xb, x, (size_t)bs * in * sizeof(float));
    const void *yb;
    if (y.labels) {
        EB_OP(upload, ws_->lb, y.labels, (size_t)bs * sizeof(int32_t));
        yb = ws_->lb;
    } else {
        EB_OP(upload, ws_->tb, y.targets, (size_t)bs * out * sizeof(float));
        yb = ws_->tb;
    }
    EB_TRY(forward_batch(ws_->xb, bs));
    return backprop_to_host(y, yb, bs, loss, grads);
}

int Mlp::gradients_via(const float *x, int64_t n, const std::function<void(const float *, float *)> &targets_of,
                       double &loss, std::vector<std::vector<float>> &grads, std::string &err) {
    ErrorNamer namer(*this, err);
    const int bs = (int)n, in = sizes_.front(), out = sizes_.back();
    EB_TRY(ensure_workspace(bs, err));
    EB_OP(upload, ws_->xb, x, (size_t)bs * in * sizeof(float));
    EB_TRY(forward_batch(ws_->xb, bs));
    std::vector<float> outs((size_t)bs * out), targets((size_t)bs * out);
    EB_OP(download, outs.data(), ws_->acts.back(), outs.size() * sizeof(float));
    targets_of(outs.data(), targets.data());
    EB_OP(upload, ws_->tb, targets.data(), targets.size() * sizeof(float));
    Supervision y;
    y.targets = targets.data();
    y.n = n;
    return backprop_to_host(y, ws_->tb, bs, loss, grads);
}

namespace {

// Adam on one tensor in double precision, each element as the JavaScript loop would take it.
// No short-circuit on finiteness and no aliasing, so it vectorises (AVX-512 clone): the loop
// was a seventh of an MDN fit's profile as scalar code.
EB_SIMD_CLONES bool adam_double(float *__restrict w, float *__restrict m, float *__restrict v, const float *__restrict g,
                                size_t n, double lr, double b1, double b2, double eps) {
    int bad = 0;
    for (size_t q = 0; q < n; q++) {
        const double gq = g[q];
        const float mq = (float)(b1 * (double)m[q] + (1 - b1) * gq);
        const float vq = (float)(b2 * (double)v[q] + (1 - b2) * gq * gq);
        const float wq = (float)((double)w[q] - (lr * (double)mq) / (std::sqrt((double)vq) + eps));
        m[q] = mq;
        v[q] = vq;
        w[q] = wq;
        bad |= !(std::fabs(wq) <= 3.402823466e38f);
    }
    return bad == 0;
}

}  // namespace

int Mlp::adam_step_via(const float *x, int64_t n, const std::function<void(const float *, float *)> &targets_of,
                       float *const *w, float *const *m, float *const *v, double lr, double b1, double b2, double eps,
                       double &loss, bool &finite, std::string &err) {
    std::vector<std::vector<float>> grads;
    EB_TRY(gradients_via(x, n, targets_of, loss, grads, err));
    finite = true;
    for (size_t t = 0; t < grads.size(); t++)
        finite = adam_double(w[t], m[t], v[t], grads[t].data(), grads[t].size(), lr, b1, b2, eps) && finite;
    if (!finite) return EB_OK;
    return load_weights(std::vector<const float *>(w, w + grads.size()), err);
}

int Mlp::backprop_to_host(const Supervision &y, const void *yb, int bs, double &loss,
                          std::vector<std::vector<float>> &grads) {
    float acc[2] = {0, 0};
    EB_OP(upload, ws_->acc, acc, sizeof acc);
    EB_TRY(loss_batch(y, yb, bs, ws_->acc));
    EB_TRY(backward_batch(ws_->xb, bs, nullptr));
    EB_OP(download, acc, ws_->acc, sizeof acc);
    loss = y.labels ? acc[0] / (double)bs : acc[0] / ((double)bs * sizes_.back());
    grads.resize(grads_.size());
    for (size_t t = 0; t < grads_.size(); t++) {
        grads[t].resize(param_len_[t]);
        EB_OP(download, grads[t].data(), grads_[t], param_len_[t] * sizeof(float));
        if (t == 0) grads[0] = to_host_layout(0, grads[0].data());
    }
    return EB_OK;
}

std::vector<float> Mlp::to_device_layout(size_t t, const float *host) const {
    std::vector<float> out(param_len_[t]);
    if (t == 0 && in_major_) transpose(host, sizes_[1], sizes_[0], out.data());
    else std::copy(host, host + param_len_[t], out.data());
    return out;
}

std::vector<float> Mlp::to_host_layout(size_t t, const float *dev) const {
    std::vector<float> out(param_len_[t]);
    if (t == 0 && in_major_) transpose(dev, sizes_[0], sizes_[1], out.data());
    else std::copy(dev, dev + param_len_[t], out.data());
    return out;
}

int Mlp::load_weights(const std::vector<const float *> &params, std::string &err) {
    ErrorNamer namer(*this, err);
    if (params.size() != params_.size()) {
        err = "expected " + std::to_string(params_.size()) + " parameter tensors, got " + std::to_string(params.size());
        return EB_ERR_ARG;
    }
    const std::vector<float> first = to_device_layout(0, params[0]);
    for (size_t t = 0; t < params.size(); t++)
        EB_OP(upload, params_[t], t == 0 ? first.data() : params[t], param_len_[t] * sizeof(float));
    return EB_OK;
}

std::vector<std::vector<float>> Mlp::get_params() const {
    std::vector<std::vector<float>> out(params_.size());
    for (size_t t = 0; t < params_.size(); t++) {
        out[t].resize(param_len_[t]);
        be_.iface->download(be_.ctx, out[t].data(), params_[t], param_len_[t] * sizeof(float));
        if (t == 0) out[0] = to_host_layout(0, out[0].data());
    }
    return out;
}

int Mlp::set_params(const std::vector<std::vector<float>> &params, std::string &err) {
    ErrorNamer namer(*this, err);
    if (params.size() != params_.size()) {
        err = "expected " + std::to_string(params_.size()) + " parameter tensors, got " + std::to_string(params.size());
        return EB_ERR_ARG;
    }
    for (size_t t = 0; t < params.size(); t++)
        if (params[t].size() != param_len_[t]) {
            err = "parameter tensor " + std::to_string(t) + " needs " + std::to_string(param_len_[t]) + " values, got " +
                  std::to_string(params[t].size());
            return EB_ERR_ARG;
        }
    const std::vector<float> first = to_device_layout(0, params[0].data());
    for (size_t t = 0; t < params.size(); t++) {
        EB_OP(upload, params_[t], t == 0 ? first.data() : params[t].data(), param_len_[t] * sizeof(float));
        EB_OP(fill, opt_m_[t], 0.0f, param_len_[t]);
        EB_OP(fill, opt_v_[t], 0.0f, param_len_[t]);
    }
    adam_t_ = 0;
    free_isda();
    return EB_OK;
}

}  // namespace eb
