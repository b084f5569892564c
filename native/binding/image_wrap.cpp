#include "image_wrap.h"

#include <vector>

#include "../src/core/aug_kernel.h"
#include "../src/core/decode.h"
#include "../src/core/registry.h"
#include "util.h"

namespace ebjs {

namespace {

// Hands a worker to libuv's pool (which owns it from then on) and gives JavaScript its promise.
template <class W>
Napi::Promise queued(std::unique_ptr<W> w) {
    Napi::Promise p = w->promise();
    w.release()->Queue();
    return p;
}

struct AugArgs {
    eb_aug_job job{};
    std::vector<eb_aug_op> ops;
    eb_backend be{};
};

// ops: [{kind, p, a, b, k}], validated in TypeScript.
std::vector<eb_aug_op> parse_ops(const Napi::Array &ops) {
    auto num = [&](const Napi::Object &obj, const char *k) { return obj.Get(k).As<Napi::Number>().DoubleValue(); };
    std::vector<eb_aug_op> out;
    for (uint32_t i = 0; i < ops.Length(); i++) {
        Napi::Object op = ops.Get(i).As<Napi::Object>();
        out.push_back({(int32_t)num(op, "kind"), (float)num(op, "p"), (float)num(op, "a"), (float)num(op, "b"),
                       (int32_t)num(op, "k")});
    }
    return out;
}

// job: {src, n, inH, inW, outH, outW, ops: [{kind, p, a, b, k}], scale, mean[3], std[3], bgr, nhwc,
//       seed, indexOffset, threads, backend, dst?}; dst is allocated here unless given.
bool parse_job(Napi::Env env, const Napi::Object &o, AugArgs &a, Napi::Float32Array &dst) {
    auto num = [&](const Napi::Object &obj, const char *k) { return obj.Get(k).As<Napi::Number>().DoubleValue(); };
    eb_aug_job &j = a.job;
    j.src = typed_data<uint8_t>(o.Get("src"));
    j.n = (int32_t)num(o, "n");
    j.in_h = (int32_t)num(o, "inH");
    j.in_w = (int32_t)num(o, "inW");
    j.out_h = (int32_t)num(o, "outH");
    j.out_w = (int32_t)num(o, "outW");
    j.scale = (float)num(o, "scale");
    Napi::Array mean = o.Get("mean").As<Napi::Array>(), std = o.Get("std").As<Napi::Array>();
    for (uint32_t c = 0; c < 3; c++) {
        j.mean[c] = (float)mean.Get(c).As<Napi::Number>().DoubleValue();
        j.std[c] = (float)std.Get(c).As<Napi::Number>().DoubleValue();
    }
    j.bgr = o.Get("bgr").ToBoolean().Value();
    j.nhwc = o.Get("nhwc").ToBoolean().Value();
    j.seed = (uint64_t)num(o, "seed");
    j.index_offset = (int64_t)num(o, "indexOffset");
    j.indices = o.Has("indices") && o.Get("indices").IsTypedArray() ? typed_data<int64_t>(o.Get("indices")) : nullptr;
    j.threads = (int32_t)num(o, "threads");
    a.ops = parse_ops(o.Get("ops").As<Napi::Array>());
    j.ops = a.ops.data();
    j.n_ops = (int32_t)a.ops.size();
    std::string err;
    const int st = eb::get_backend(o.Get("backend").As<Napi::String>().Utf8Value(), a.be, err);
    if (st != EB_OK) {
        status_error(env, st, err).ThrowAsJavaScriptException();
        return false;
    }
    const size_t len = (size_t)j.n * 3 * j.out_h * j.out_w;
    // A caller's array to fill again spares a zeroed allocation on the main thread per batch.
    dst = o.Has("dst") && o.Get("dst").IsTypedArray() ? o.Get("dst").As<Napi::Float32Array>() : Napi::Float32Array::New(env, len);
    if (dst.ElementLength() != len) {
        Napi::RangeError::New(env, "dst must hold n*3*outH*outW floats").ThrowAsJavaScriptException();
        return false;
    }
    j.dst = dst.Data();
    return true;
}

int run_augment(AugArgs &a) {
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    const eb_backend &be = a.be.iface->augment ? a.be : cpu;
    return be.iface->augment(be.ctx, &a.job);
}

Napi::Value augment(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "augment", [&]() -> Napi::Value {
        AugArgs a;
        Napi::Float32Array dst;
        if (!parse_job(env, info[0].As<Napi::Object>(), a, dst)) return env.Undefined();
        const int st = run_augment(a);
        if (st != EB_OK) throw status_error(env, st, std::string("augmentation failed on backend '") + a.be.iface->name(a.be.ctx) + "'");
        return dst;
    });
}

class AugmentWorker : public Napi::AsyncWorker {
public:
    AugmentWorker(Napi::Env env, Napi::Object job, Napi::Float32Array dst)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {
        job_ = Napi::Persistent(job);
        src_ = Napi::Persistent(job.Get("src").As<Napi::Object>());
        dst_ = Napi::Persistent(dst.As<Napi::Object>());
    }
    AugArgs args;
    Napi::Promise promise() { return deferred_.Promise(); }

protected:
    void Execute() override {
        std::string err;
        status_ = guarded_status(err, [&] { return run_augment(args); });
        if (status_ != EB_OK)
            SetError(std::string("augmentation failed on backend '") + args.be.iface->name(args.be.ctx) + "'" +
                     (err.empty() ? "" : ": " + err));
    }
    void OnOK() override { deferred_.Resolve(dst_.Value()); }
    void OnError(const Napi::Error &e) override { deferred_.Reject(status_error(Env(), status_, e.Message()).Value()); }

private:
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference job_, src_, dst_;
    int status_ = EB_OK;
};

Napi::Value augment_async(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "augmentAsync", [&]() -> Napi::Value {
        Napi::Object job = info[0].As<Napi::Object>();
        AugArgs a;
        Napi::Float32Array dst;
        if (!parse_job(env, job, a, dst)) return env.Undefined();
        auto w = std::make_unique<AugmentWorker>(env, job, dst);
        w->args = std::move(a);
        w->args.job.ops = w->args.ops.data();
        return queued(std::move(w));
    });
}

class DecodeWorker : public Napi::AsyncWorker {
public:
    DecodeWorker(Napi::Env env, Napi::Array blobs, int w, int h, int threads, int64_t max_pixels)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), w_(w), h_(h), threads_(threads),
          max_pixels_(max_pixels) {
        blobs_ref_ = Napi::Persistent(blobs.As<Napi::Object>());
        for (uint32_t i = 0; i < blobs.Length(); i++) {
            auto b = blobs.Get(i).As<Napi::Uint8Array>();
            blobs_.push_back({b.Data(), b.ByteLength()});
        }
        // Decoded straight into the array handed back: a vector, zeroed and then copied over, cost
        // the main thread two passes over each chunk's pixels.
        auto px = Napi::Uint8Array::New(env, w > 0 ? blobs_.size() * (size_t)w * h * 3 : 0);
        pixels_ref_ = Napi::Persistent(px.As<Napi::Object>());
        pixels_ = px.Data();
    }
    Napi::Promise promise() { return deferred_.Promise(); }

protected:
    void Execute() override {
        std::string err;
        status_ = guarded_status(err, [&] {
            eb::decode_jpegs(blobs_, w_, h_, max_pixels_, pixels_, info_, threads_);
            return EB_OK;
        });
        if (status_ != EB_OK) SetError("decoding JPEGs: " + err);
    }
    void OnOK() override {
        Napi::Env env = Env();
        Napi::Object res = Napi::Object::New(env);
        Napi::Array errors = Napi::Array::New(env, info_.size());
        auto widths = Napi::Int32Array::New(env, info_.size()), heights = Napi::Int32Array::New(env, info_.size());
        for (size_t i = 0; i < info_.size(); i++) {
            errors.Set((uint32_t)i, info_[i].error.empty() ? env.Null() : Napi::String::New(env, info_[i].error));
            widths[i] = info_[i].width;
            heights[i] = info_[i].height;
        }
        res.Set("pixels", pixels_ref_.Value());
        res.Set("errors", errors);
        res.Set("widths", widths);
        res.Set("heights", heights);
        deferred_.Resolve(res);
    }
    void OnError(const Napi::Error &e) override { deferred_.Reject(status_error(Env(), status_, e.Message()).Value()); }

private:
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference blobs_ref_;
    std::vector<std::pair<const uint8_t *, size_t>> blobs_;
    Napi::ObjectReference pixels_ref_;
    uint8_t *pixels_;
    std::vector<eb::DecodedImage> info_;
    int w_, h_, threads_;
    int64_t max_pixels_;
    int status_ = EB_OK;
};

class NearestWorker : public Napi::AsyncWorker {
public:
    NearestWorker(Napi::Env env, Napi::Float32Array x, int64_t n, int d, int k, Napi::Value queries)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), n_(n), d_(d), k_(k) {
        x_ = Napi::Persistent(x.As<Napi::Object>());
        data_ = x.Data();
        listed_ = queries.IsTypedArray();
        if (listed_) {
            Napi::Int32Array q = queries.As<Napi::Int32Array>();
            queries_.assign(q.Data(), q.Data() + q.ElementLength());
        }
        const int64_t nq = listed_ ? (int64_t)queries_.size() : n;
        idx_.resize((size_t)nq * k);
        sim_.resize((size_t)nq * k);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

protected:
    void Execute() override {
        std::string err;
        // An empty list asks for nothing (NULL would ask for every row).
        if (listed_ && queries_.empty()) return;
        status_ = guarded_status(err, [&] { return eb_cpu_nearest_rows(data_, n_, d_, k_, listed_ ? queries_.data() : nullptr,
                                                                             (int64_t)queries_.size(), idx_.data(), sim_.data(), nullptr); });
        if (status_ != EB_OK) SetError("nearestRows: " + (err.empty() ? std::string("failed") : err));
    }
    void OnOK() override {
        Napi::Env env = Env();
        auto idx = Napi::Int32Array::New(env, idx_.size());
        auto sim = Napi::Float32Array::New(env, sim_.size());
        std::copy(idx_.begin(), idx_.end(), idx.Data());
        std::copy(sim_.begin(), sim_.end(), sim.Data());
        Napi::Object o = Napi::Object::New(env);
        o.Set("idx", idx);
        o.Set("sim", sim);
        deferred_.Resolve(o);
    }
    void OnError(const Napi::Error &e) override { deferred_.Reject(status_error(Env(), status_, e.Message()).Value()); }

private:
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference x_;
    const float *data_;
    int64_t n_;
    int d_, k_;
    bool listed_;
    std::vector<int32_t> queries_, idx_;
    std::vector<float> sim_;
    int status_ = EB_OK;
};

class DetailWorker : public Napi::AsyncWorker {
public:
    DetailWorker(Napi::Env env, Napi::Uint8Array grey, Napi::Int32Array pairs, Napi::Uint8Array mirror, int threads)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), threads_(threads) {
        refs_[0] = Napi::Persistent(grey.As<Napi::Object>());
        refs_[1] = Napi::Persistent(pairs.As<Napi::Object>());
        refs_[2] = Napi::Persistent(mirror.As<Napi::Object>());
        grey_ = grey.Data();
        n_ = (int64_t)grey.ElementLength() / 1024;
        pairs_ = pairs.Data();
        mirror_ = mirror.Data();
        m_ = (int64_t)mirror.ElementLength();
        out_.resize((size_t)m_);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

protected:
    void Execute() override {
        std::string err;
        status_ = guarded_status(err, [&] { return eb_cpu_detail_similarity(grey_, n_, pairs_, mirror_, m_, threads_, out_.data(), nullptr); });
        if (status_ == EB_OK) return;
        const char *why = status_ == EB_ERR_ALLOC ? "out of memory" : status_ == EB_ERR_ARG ? "a pair names an image outside grey" : "failed";
        SetError("detailSimilarity: " + (err.empty() ? std::string(why) : err));
    }
    void OnOK() override {
        auto out = Napi::Float64Array::New(Env(), out_.size());
        std::copy(out_.begin(), out_.end(), out.Data());
        deferred_.Resolve(out);
    }
    void OnError(const Napi::Error &e) override { deferred_.Reject(status_error(Env(), status_, e.Message()).Value()); }

private:
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference refs_[3];
    const uint8_t *grey_, *mirror_;
    const int32_t *pairs_;
    int64_t n_, m_;
    int threads_;
    std::vector<double> out_;
    int status_ = EB_OK;
};

// augTheta(ops, seed, indices: BigInt64Array) -> Float32Array of indices.length * ops * EB_AUG_THETA_PER_OP:
// the parameters each image's view draws, for a conditional Ω. Cheap, so synchronous.
Napi::Value aug_theta(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "augTheta", [&]() -> Napi::Value {
        const std::vector<eb_aug_op> ops = parse_ops(info[0].As<Napi::Array>());
        const uint64_t seed = (uint64_t)info[1].As<Napi::Number>().Int64Value();
        Napi::BigInt64Array idx = info[2].As<Napi::BigInt64Array>();
        const size_t per = ops.size() * EB_AUG_THETA_PER_OP;
        Napi::Float32Array out = Napi::Float32Array::New(env, idx.ElementLength() * per);
        for (size_t i = 0; i < idx.ElementLength(); i++)
            eb::aug_theta(ops.data(), (int)ops.size(), seed, idx[i], out.Data() + i * per);
        return out;
    });
}

// nearestRows(x: Float32Array of unit rows, n, d, k, queries?: Int32Array) -> Promise<{idx: Int32Array, sim: Float32Array}>,
// [queries.length or n, k] each
Napi::Value nearest_rows(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "nearestRows", [&]() -> Napi::Value {
        return queued(std::make_unique<NearestWorker>(env, info[0].As<Napi::Float32Array>(), info[1].As<Napi::Number>().Int64Value(),
                                                       info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value(), info[4]));
    });
}

// detailSimilarity(grey: Uint8Array [n, 32×32], pairs: Int32Array [m, 2], mirror: Uint8Array [m], threads)
// -> Promise<Float64Array [m]>: the duplicate search's verdict on each pair (see detail.cpp)
Napi::Value detail_similarity(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "detailSimilarity", [&]() -> Napi::Value {
        return queued(std::make_unique<DetailWorker>(env, info[0].As<Napi::Uint8Array>(), info[1].As<Napi::Int32Array>(), info[2].As<Napi::Uint8Array>(),
                                                     info[3].As<Napi::Number>().Int32Value()));
    });
}

// decodeJpegs(blobs, width, height, threads, maxPixels) -> Promise<{pixels, errors, widths, heights}>
Napi::Value decode_jpegs(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "decodeJpegs", [&]() -> Napi::Value {
        return queued(std::make_unique<DecodeWorker>(env, info[0].As<Napi::Array>(), info[1].As<Napi::Number>().Int32Value(),
                                                     info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value(),
                                                     info[4].As<Napi::Number>().Int64Value()));
    });
}

}  // namespace

Napi::Object init_image(Napi::Env env, Napi::Object exports) {
    exports.Set("augment", Napi::Function::New(env, augment));
    exports.Set("augmentAsync", Napi::Function::New(env, augment_async));
    exports.Set("augTheta", Napi::Function::New(env, aug_theta));
    exports.Set("decodeJpegs", Napi::Function::New(env, decode_jpegs));
    exports.Set("nearestRows", Napi::Function::New(env, nearest_rows));
    exports.Set("detailSimilarity", Napi::Function::New(env, detail_similarity));
    return exports;
}

}  // namespace ebjs
