// JS class `Mlp`: construct on a backend, train in an AsyncProgressQueueWorker with one
// progress message per epoch, infer, read and write weights. Arguments arrive already
// validated by electron/engine/native.ts; this layer converts and guards state only.
#include "mlp_wrap.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "../src/core/mlp.h"
#include "../src/core/registry.h"
#include "util.h"

namespace ebjs {

namespace {

class MlpWrap : public Napi::ObjectWrap<MlpWrap> {
public:
    static Napi::Function define(Napi::Env env) {
        return DefineClass(env, "Mlp",
                           {InstanceMethod("forward", &MlpWrap::forward), InstanceMethod("train", &MlpWrap::train),
                            InstanceMethod("gradients", &MlpWrap::gradients),
                            InstanceMethod("adamStepVia", &MlpWrap::adam_step_via),
                            InstanceMethod("getParams", &MlpWrap::get_params),
                            InstanceMethod("setParams", &MlpWrap::set_params),
                            InstanceMethod("cancel", &MlpWrap::cancel), InstanceMethod("dispose", &MlpWrap::dispose),
                            InstanceAccessor("busy", &MlpWrap::get_busy, nullptr),
                            InstanceAccessor("disposed", &MlpWrap::get_disposed, nullptr),
                            InstanceAccessor("backend", &MlpWrap::get_backend, nullptr)});
    }

    // new Mlp(sizes: number[], backend: string, seed: number, residual: boolean)
    explicit MlpWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<MlpWrap>(info) {
        Napi::Env env = info.Env();
        guarded(env, "creating an MLP", [&] {
            Napi::Array arr = info[0].As<Napi::Array>();
            std::vector<int> sizes;
            for (uint32_t i = 0; i < arr.Length(); i++) sizes.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
            eb_backend be;
            std::string err;
            const int st = eb::get_backend(info[1].As<Napi::String>().Utf8Value(), be, err);
            if (st != EB_OK) throw status_error(env, st, err);
            const uint64_t seed = (uint64_t)info[2].As<Napi::Number>().DoubleValue();
            mlp_ = std::make_unique<eb::Mlp>(be, sizes, seed, info[3].As<Napi::Boolean>().Value());
        });
    }

    std::atomic<bool> busy_{false}, cancel_{false};
    std::unique_ptr<eb::Mlp> mlp_;

private:
    bool usable(Napi::Env env) {
        if (!mlp_) {
            make_error(env, "E_DISPOSED", "this model was disposed: create a new one").ThrowAsJavaScriptException();
            return false;
        }
        if (busy_) {
            make_error(env, "E_BUSY", "this model is training: wait for train() to settle or call cancel()")
                .ThrowAsJavaScriptException();
            return false;
        }
        return true;
    }

    Napi::Value forward(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (!usable(env)) return env.Undefined();
        return guarded(env, "forward", [&]() -> Napi::Value {
            const int64_t n = info[1].As<Napi::Number>().Int64Value();
            auto out = Napi::Float32Array::New(env, (size_t)n * mlp_->sizes().back());
            std::string err;
            const int st = mlp_->forward(typed_data<float>(info[0]), n, out.Data(), err);
            if (st != EB_OK) throw status_error(env, st, err);
            return out;
        });
    }

    Napi::Value gradients(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (!usable(env)) return env.Undefined();
        eb::Supervision y;
        y.n = info[1].As<Napi::Number>().Int64Value();
        if (info[2].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) y.labels = typed_data<int32_t>(info[2]);
        else y.targets = typed_data<float>(info[2]);
        return guarded(env, "gradients", [&]() -> Napi::Value {
            double loss = 0;
            std::vector<std::vector<float>> grads;
            std::string err;
            const int st = mlp_->gradients(typed_data<float>(info[0]), y, loss, grads, err);
            if (st != EB_OK) throw status_error(env, st, err);
            Napi::Object res = Napi::Object::New(env);
            res.Set("loss", loss);
            res.Set("grads", to_js(env, grads));
            return res;
        });
    }

    // adamStepVia(x, n, targetsOf, params[], m[], v[], lr, beta1, beta2, eps) -> loss, or null
    // when a weight stopped being finite. One Adam step of a loss computed in JavaScript
    // (Mlp::adam_step_via): the same numbers as the forward pass, the gradients and the
    // JavaScript update it replaces, without a second forward pass or the weights through JS.
    Napi::Value adam_step_via(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (!usable(env)) return env.Undefined();
        return guarded(env, "adamStepVia", [&]() -> Napi::Value {
            const int64_t n = info[1].As<Napi::Number>().Int64Value();
            Napi::Function targets_of = info[2].As<Napi::Function>();
            const size_t out_len = (size_t)n * mlp_->sizes().back();
            auto tensors = [&](int k) {
                Napi::Array arr = info[k].As<Napi::Array>();
                std::vector<float *> v(arr.Length());
                for (uint32_t t = 0; t < arr.Length(); t++) v[t] = arr.Get(t).As<Napi::Float32Array>().Data();
                return v;
            };
            std::vector<float *> w = tensors(3), m = tensors(4), v = tensors(5);
            double loss = 0;
            bool finite = true;
            std::string err;
            int st = mlp_->adam_step_via(
                typed_data<float>(info[0]), n,
                [&](const float *out, float *targets) {
                    auto o = Napi::Float32Array::New(env, out_len);
                    std::copy(out, out + out_len, o.Data());
                    Napi::Value r = targets_of.Call({o});
                    if (!r.IsTypedArray() || r.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
                        r.As<Napi::Float32Array>().ElementLength() != out_len)
                        throw make_error(env, "E_ARG", "targetsOf must return a Float32Array as long as its input");
                    const float *t = r.As<Napi::Float32Array>().Data();
                    std::copy(t, t + out_len, targets);
                },
                w.data(), m.data(), v.data(), info[6].As<Napi::Number>().DoubleValue(), info[7].As<Napi::Number>().DoubleValue(),
                info[8].As<Napi::Number>().DoubleValue(), info[9].As<Napi::Number>().DoubleValue(), loss, finite, err);
            if (st != EB_OK) throw status_error(env, st, err);
            if (!finite) return env.Null();
            return Napi::Number::New(env, loss);
        });
    }

    static Napi::Array to_js(Napi::Env env, const std::vector<std::vector<float>> &v) {
        Napi::Array out = Napi::Array::New(env, v.size());
        for (size_t t = 0; t < v.size(); t++) {
            auto a = Napi::Float32Array::New(env, v[t].size());
            std::copy(v[t].begin(), v[t].end(), a.Data());
            out.Set((uint32_t)t, a);
        }
        return out;
    }

    Napi::Value get_params(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (!usable(env)) return env.Undefined();
        return guarded(env, "getParams", [&] { return to_js(env, mlp_->get_params()); });
    }

    Napi::Value set_params(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (!usable(env)) return env.Undefined();
        guarded(env, "setParams", [&] {
            Napi::Array arr = info[0].As<Napi::Array>();
            std::vector<std::vector<float>> params(arr.Length());
            for (uint32_t t = 0; t < arr.Length(); t++) {
                auto a = arr.Get(t).As<Napi::Float32Array>();
                params[t].assign(a.Data(), a.Data() + a.ElementLength());
            }
            std::string err;
            const int st = mlp_->set_params(params, err);
            if (st != EB_OK) throw status_error(env, st, err);
        });
        return env.Undefined();
    }

    Napi::Value train(const Napi::CallbackInfo &info);

    Napi::Value cancel(const Napi::CallbackInfo &info) {
        cancel_ = true;
        return info.Env().Undefined();
    }

    Napi::Value dispose(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (busy_) {
            make_error(env, "E_BUSY", "cannot dispose a model while it trains: call cancel() and await train() first")
                .ThrowAsJavaScriptException();
            return env.Undefined();
        }
        mlp_.reset();
        return env.Undefined();
    }

    Napi::Value get_busy(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), busy_.load()); }
    Napi::Value get_disposed(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), !mlp_); }
    Napi::Value get_backend(const Napi::CallbackInfo &info) {
        return mlp_ ? Napi::String::New(info.Env(), mlp_->backend_name()) : info.Env().Null();
    }
};

Napi::Object stats_to_js(Napi::Env env, const eb::EpochStats &s) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("epoch", s.epoch);
    o.Set("loss", s.loss);
    o.Set("accuracy", s.accuracy >= 0 ? Napi::Value(Napi::Number::New(env, s.accuracy)) : env.Null());
    o.Set("valLoss", s.val_loss >= 0 ? Napi::Value(Napi::Number::New(env, s.val_loss)) : env.Null());
    o.Set("valAccuracy", s.val_accuracy >= 0 ? Napi::Value(Napi::Number::New(env, s.val_accuracy)) : env.Null());
    o.Set("seconds", s.seconds);
    return o;
}

class TrainWorker : public Napi::AsyncProgressQueueWorker<eb::EpochStats> {
public:
    TrainWorker(Napi::Env env, MlpWrap *owner, Napi::Object self, Napi::Function on_epoch)
        : Napi::AsyncProgressQueueWorker<eb::EpochStats>(env), owner_(owner), deferred_(Napi::Promise::Deferred::New(env)) {
        self_ = Napi::Persistent(self);
        if (!on_epoch.IsEmpty()) on_epoch_ = Napi::Persistent(on_epoch);
    }

    // Keeps every typed array alive until the worker finishes.
    template <typename T>
    const T *hold(const Napi::Value &v) {
        if (v.IsUndefined() || v.IsNull()) return nullptr;
        held_.push_back(Napi::Persistent(v.As<Napi::Object>()));
        return typed_data<T>(v);
    }

    eb::TrainData data;
    eb::TrainConfig cfg;
    Napi::Promise promise() { return deferred_.Promise(); }

protected:
    void Execute(const ExecutionProgress &progress) override {
        std::string err;
        status_ = guarded_status(err, [&] {
            return owner_->mlp_->train(data, cfg, owner_->cancel_, [&](const eb::EpochStats &s) {
                history_.push_back(s);
                progress.Send(&s, 1);
            }, err);
        });
        if (status_ != EB_OK) SetError(err.empty() ? "training failed" : err);
    }

    void OnProgress(const eb::EpochStats *s, size_t count) override {
        if (on_epoch_.IsEmpty()) return;
        Napi::HandleScope scope(Env());
        for (size_t i = 0; i < count; i++) on_epoch_.Call({stats_to_js(Env(), s[i])});
    }

    void OnOK() override {
        finish();
        Napi::Array out = Napi::Array::New(Env(), history_.size());
        for (size_t i = 0; i < history_.size(); i++) out.Set((uint32_t)i, stats_to_js(Env(), history_[i]));
        deferred_.Resolve(out);
    }

    void OnError(const Napi::Error &e) override {
        finish();
        Napi::Error err = status_error(Env(), status_, e.Message());
        Napi::Array done = Napi::Array::New(Env(), history_.size());
        for (size_t i = 0; i < history_.size(); i++) done.Set((uint32_t)i, stats_to_js(Env(), history_[i]));
        err.Value().Set("history", done);
        deferred_.Reject(err.Value());
    }

private:
    void finish() {
        owner_->busy_ = false;
        owner_->cancel_ = false;
    }

    MlpWrap *owner_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference self_;
    Napi::FunctionReference on_epoch_;
    std::vector<Napi::ObjectReference> held_;
    std::vector<eb::EpochStats> history_;
    int status_ = EB_OK;
};

eb::Supervision supervision(TrainWorker *w, const Napi::Object &o, const char *labels, const char *targets, int64_t n) {
    eb::Supervision s;
    s.labels = w->hold<int32_t>(o.Get(labels));
    s.targets = w->hold<float>(o.Get(targets));
    s.n = n;
    return s;
}

// train({x, views, n, labels | targets, valX?, valN?, valLabels | valTargets, batch, epochs, seed,
//        firstEpoch, totalEpochs, mixupAlpha, isdaLambda, optimizer: {kind, lr, momentum, weightDecay,
//        nesterov, beta1, beta2, eps, schedule}}, onEpoch?) -> Promise<EpochStats[]>
Napi::Value MlpWrap::train(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!usable(env)) return env.Undefined();
    return guarded(env, "train", [&]() -> Napi::Value {
        Napi::Object o = info[0].As<Napi::Object>();
        Napi::Function cb = info.Length() > 1 && info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
        auto w = std::make_unique<TrainWorker>(env, this, Value(), cb);
        auto num = [&](const Napi::Object &obj, const char *k) { return obj.Get(k).As<Napi::Number>().DoubleValue(); };
        w->data.x = w->hold<float>(o.Get("x"));
        w->data.views = (int)num(o, "views");
        w->data.y = supervision(w.get(), o, "labels", "targets", (int64_t)num(o, "n"));
        if (o.Has("valX") && !o.Get("valX").IsUndefined()) {
            w->data.val_x = w->hold<float>(o.Get("valX"));
            w->data.val_y = supervision(w.get(), o, "valLabels", "valTargets", (int64_t)num(o, "valN"));
        }
        w->cfg.batch = (int)num(o, "batch");
        w->cfg.epochs = (int)num(o, "epochs");
        w->cfg.seed = (uint64_t)num(o, "seed");
        w->cfg.first_epoch = (int)num(o, "firstEpoch");
        w->cfg.total_epochs = (int)num(o, "totalEpochs");
        w->cfg.mixup_alpha = (float)num(o, "mixupAlpha");
        w->cfg.isda_lambda = (float)num(o, "isdaLambda");
        Napi::Object opt = o.Get("optimizer").As<Napi::Object>();
        eb::OptimConfig &c = w->cfg.opt;
        c.kind = opt.Get("kind").As<Napi::String>().Utf8Value() == "adam" ? eb::OptimConfig::ADAM : eb::OptimConfig::SGD;
        c.lr = (float)num(opt, "lr");
        c.momentum = (float)num(opt, "momentum");
        c.weight_decay = (float)num(opt, "weightDecay");
        c.nesterov = opt.Get("nesterov").ToBoolean().Value();
        c.beta1 = (float)num(opt, "beta1");
        c.beta2 = (float)num(opt, "beta2");
        c.eps = (float)num(opt, "eps");
        c.schedule = opt.Get("schedule").As<Napi::String>().Utf8Value() == "cosine" ? eb::OptimConfig::COSINE
                                                                                   : eb::OptimConfig::CONSTANT;
        busy_ = true;
        cancel_ = false;
        Napi::Promise p = w->promise();
        w.release()->Queue();  // the queued worker deletes itself when it completes
        return p;
    });
}

}  // namespace

Napi::Object init_mlp(Napi::Env env, Napi::Object exports) {
    exports.Set("Mlp", MlpWrap::define(env));
    return exports;
}

}  // namespace ebjs
