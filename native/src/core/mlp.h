// A dense MLP (Linear + ReLU layers, linear output) trained entirely through a backend's
// function table: weights, optimiser state and the whole training set stay on the
// backend across a training call; only per-epoch statistics come back.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eb_backend.h"
#include "failure.h"

namespace eb {

struct OptimConfig {
    enum Kind { SGD = 0, ADAM = 1 } kind = SGD;
    float lr = 0.01f, momentum = 0.9f, weight_decay = 0.0f;
    bool nesterov = false;
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    enum Schedule { CONSTANT = 0, COSINE = 1 } schedule = CONSTANT;
};

// Labels (classification) or targets (regression), never both.
struct Supervision {
    const int32_t *labels = nullptr;
    const float *targets = nullptr;
    int64_t n = 0;
};

struct TrainData {
    const float *x = nullptr;  // views * n rows of in_dim: view v of sample i is row v*n + i
    int views = 1;
    Supervision y;
    const float *val_x = nullptr;  // optional held-out set evaluated after every epoch
    Supervision val_y;
};

struct TrainConfig {
    int batch = 128;
    int epochs = 1;
    uint64_t seed = 0;
    int first_epoch = 0;    // lets a caller train epoch by epoch with the same shuffles and schedule
    int total_epochs = 0;   // horizon of the learning-rate schedule; 0 = epochs
    OptimConfig opt;
    // Classification only. Mixup of the inputs: each batch mixes with a shuffle of itself at
    // λ ~ Beta(α, α). ISDA: λ0 of the covariance term, ramped λ = λ0·epoch/horizon as in the
    // paper; the class covariances persist across train calls, like the optimiser state.
    float mixup_alpha = 0.0f;
    float isda_lambda = 0.0f;
};

struct EpochStats {
    int epoch = 0;
    double loss = 0, accuracy = -1, val_loss = -1, val_accuracy = -1, seconds = 0;
};

class Mlp {
public:
    // Throws Failure (EB_ERR_ALLOC) when the backend cannot hold the parameters.
    Mlp(eb_backend backend, std::vector<int> sizes, uint64_t seed, bool residual);
    ~Mlp();
    Mlp(const Mlp &) = delete;
    Mlp &operator=(const Mlp &) = delete;

    // Each returns EB_OK or an eb_status with a sentence in err.
    int train(const TrainData &data, const TrainConfig &cfg, const std::atomic<bool> &cancel,
              const std::function<void(const EpochStats &)> &on_epoch, std::string &err);
    int forward(const float *x, int64_t n, float *out, std::string &err);
    // Mean loss and the gradient of every parameter on one batch, without an update.
    int gradients(const float *x, const Supervision &y, double &loss, std::vector<std::vector<float>> &grads,
                  std::string &err);
    // The same for a loss only the caller can compute (a likelihood, an energy score), with one
    // forward pass: `targets_of(out, targets)` gets the batch's outputs and writes regression
    // targets whose MSE gradient is the one it wants; the backward pass follows.
    int gradients_via(const float *x, int64_t n, const std::function<void(const float *, float *)> &targets_of,
                      double &loss, std::vector<std::vector<float>> &grads, std::string &err);
    // One Adam step of such a loss on the caller's float32 weights and moments (host memory,
    // one tensor per weight and bias, lengths as param_len), in double precision in the order
    // `w -= lr·m / (√v + eps)` written in JavaScript takes, then the weights loaded. `finite`
    // is false when a weight stopped being finite: the caller's arrays then hold the failed
    // step, and the model keeps its weights.
    int adam_step_via(const float *x, int64_t n, const std::function<void(const float *, float *)> &targets_of,
                      float *const *w, float *const *m, float *const *v, double lr, double b1, double b2, double eps,
                      double &loss, bool &finite, std::string &err);

    std::vector<std::vector<float>> get_params() const;
    int set_params(const std::vector<std::vector<float>> &params, std::string &err);
    // The weights alone, from the caller's memory (lengths as param_len): the optimiser's state
    // is left as it is.
    int load_weights(const std::vector<const float *> &params, std::string &err);
    const std::vector<int> &sizes() const { return sizes_; }
    size_t param_tensors() const { return param_len_.size(); }
    size_t param_len(size_t i) const { return param_len_[i]; }
    const char *backend_name() const { return be_.iface->name(be_.ctx); }

private:
    struct Workspace;
    struct ErrorNamer;
    void init_params(uint64_t seed);
    void release_all();
    int failed(int st, const char *op);
    int ensure_workspace(int batch, std::string &err);
    void free_workspace();
    int forward_batch(const float *xb, int bs);
    int loss_batch(const Supervision &y, const void *yb, int bs, float *acc);
    // Gradients of every parameter, last layer first; layer_done(l), where given, runs once
    // layer l's gradients are complete and its weight is no longer needed by the pass.
    int backward_batch(const float *xb, int bs, const std::function<int(int)> &layer_done);
    // The loss and backward pass of the batch forward_batch left in the workspace, then the
    // loss and every gradient on the host (gradients, gradients_via).
    int backprop_to_host(const Supervision &y, const void *yb, int bs, double &loss,
                         std::vector<std::vector<float>> &grads);
    // The optimiser's update of one layer's weight and bias (adam_t_ counts the steps).
    int update(int layer, float lr);
    // A parameter tensor between the caller's layout (every weight [out × in]) and the one
    // kept on the backend (the first layer's [in × out] where in_major_).
    std::vector<float> to_device_layout(size_t t, const float *host) const;
    std::vector<float> to_host_layout(size_t t, const float *dev) const;
    int ensure_isda(int c, int d, std::string &err);
    void free_isda();
    int evaluate(const float *x_dev, const void *y_dev, bool labels, int64_t n, double &loss, double &acc,
                 std::string &err);

    eb_backend be_;
    std::vector<int> sizes_;
    bool residual_;
    // The first layer's weight is kept transposed, [in × out], when it is not also the last
    // (whose [out × in] rows ISDA reads). Nothing needs that layer's input gradient, so its
    // weight only meets the forward pass and its own gradient: transposed, the forward pass is
    // x·W (no transpose), which libxsmm runs with OpenBLAS's bits (it has no kernel for x·Wᵀ),
    // and the gradient xᵀ·dy is the same sums as dyᵀ·x. The caller never sees this layout.
    bool in_major_;
    std::vector<size_t> param_len_;
    std::vector<float *> params_, grads_, opt_m_, opt_v_;
    int64_t adam_t_ = 0;
    OptimConfig opt_;
    Workspace *ws_ = nullptr;
    // ISDA's estimator (mean [c, d], covariance [c, d, d], count [c]), its scratch and the
    // gradient its term adds to the last layer's weights; allocated on first use.
    float *isda_mean_ = nullptr, *isda_cov_ = nullptr, *isda_count_ = nullptr, *isda_scratch_ = nullptr, *isda_dw_ = nullptr;
    const char *failed_op_ = nullptr;
    int failed_status_ = EB_OK;
};

}  // namespace eb
