// Module entry: registers the wrappers and the small free functions.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "../src/core/registry.h"
#include "image_wrap.h"
#include "mlp_wrap.h"
#include "util.h"

namespace ebjs {

namespace {

Napi::Value list_backends(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    const auto list = eb::list_backends();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", list[i].name);
        o.Set("available", list[i].available);
        o.Set("device", list[i].device);
        o.Set("memoryBytes", (double)list[i].memory_bytes);
        o.Set("reason", list[i].reason.empty() ? env.Null() : Napi::String::New(env, list[i].reason));
        out.Set((uint32_t)i, o);
    }
    return out;
}

Napi::Value set_library_dir(const Napi::CallbackInfo &info) {
    eb::registry_set_library_dir(info[0].As<Napi::String>().Utf8Value());
    return info.Env().Undefined();
}

Napi::Value set_threads(const Napi::CallbackInfo &info) {
    eb_cpu_set_threads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
}

Napi::Value get_threads(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), eb_cpu_get_threads()); }

Napi::Value peak_gflops(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), eb_cpu_peak_gflops(info[0].As<Napi::Number>().Int32Value(),
                                                            info[1].As<Napi::Number>().DoubleValue()));
}

// Seconds for `reps` GEMMs C[m,n] = op(A) op(B) on a backend (ta, tb: 0 and 1 unless given),
// for benchmarks.
Napi::Value time_gemm(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "timeGemm", [&]() -> Napi::Value {
        eb_backend be;
        std::string err;
        const int st = eb::get_backend(info[0].As<Napi::String>().Utf8Value(), be, err);
        if (st != EB_OK) throw status_error(env, st, err);
        const int m = info[1].As<Napi::Number>().Int32Value(), n = info[2].As<Napi::Number>().Int32Value(),
                  k = info[3].As<Napi::Number>().Int32Value(), reps = info[4].As<Napi::Number>().Int32Value();
        const int ta = info.Length() > 5 ? info[5].ToBoolean().Value() : 0, tb = info.Length() > 6 ? info[6].ToBoolean().Value() : 1;
        std::vector<float> host((size_t)std::max({(size_t)m * k, (size_t)k * n, (size_t)m * n}), 0.5f);
        auto *a = static_cast<float *>(be.iface->alloc(be.ctx, sizeof(float) * m * k));
        auto *b = static_cast<float *>(be.iface->alloc(be.ctx, sizeof(float) * k * n));
        auto *c = static_cast<float *>(be.iface->alloc(be.ctx, sizeof(float) * m * n));
        auto release = [&] {
            for (float *p : {a, b, c})
                if (p) be.iface->release(be.ctx, p);
        };
        if (!a || !b || !c) {
            release();
            throw std::bad_alloc();
        }
        be.iface->upload(be.ctx, a, host.data(), sizeof(float) * m * k);
        be.iface->upload(be.ctx, b, host.data(), sizeof(float) * k * n);
        be.iface->gemm(be.ctx, ta, tb, m, n, k, 1.0f, a, b, 0.0f, c);
        be.iface->synchronize(be.ctx);
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; r++) be.iface->gemm(be.ctx, ta, tb, m, n, k, 1.0f, a, b, 0.0f, c);
        be.iface->synchronize(be.ctx);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        release();
        return Napi::Number::New(env, dt);
    });
}

// meanCovariance(x: Float32Array, n, d, ddof) -> { mean: Float64Array [d], cov: Float64Array [d, d] }
Napi::Value mean_covariance(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "meanCovariance", [&]() -> Napi::Value {
        const int64_t n = info[1].As<Napi::Number>().Int64Value();
        const int d = info[2].As<Napi::Number>().Int32Value(), ddof = info[3].As<Napi::Number>().Int32Value();
        auto mean = Napi::Float64Array::New(env, d), cov = Napi::Float64Array::New(env, (size_t)d * d);
        const int st = eb_cpu_mean_covariance(typed_data<float>(info[0]), n, d, ddof, mean.Data(), cov.Data());
        if (st != EB_OK) throw status_error(env, st, "a covariance needs at least ddof + 1 rows");
        Napi::Object out = Napi::Object::New(env);
        out.Set("mean", mean);
        out.Set("cov", cov);
        return out;
    });
}

// whitenRows(t: Float32Array, n, d, mean: Float32Array [d], chol: Float32Array [d, d]) -> Float32Array [n, d]
Napi::Value whiten_rows(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    return guarded(env, "whitenRows", [&]() -> Napi::Value {
        const int64_t n = info[1].As<Napi::Number>().Int64Value();
        const int d = info[2].As<Napi::Number>().Int32Value();
        auto u = Napi::Float32Array::New(env, (size_t)n * d);
        const int st = eb_cpu_whiten_rows(typed_data<float>(info[0]), n, d, typed_data<float>(info[3]), typed_data<float>(info[4]), u.Data());
        if (st != EB_OK) throw status_error(env, st, "whitenRows needs d >= 1");
        return u;
    });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
    exports.Set("abiVersion", EB_BACKEND_ABI_VERSION);
    exports.Set("listBackends", Napi::Function::New(env, list_backends));
    exports.Set("setLibraryDir", Napi::Function::New(env, set_library_dir));
    exports.Set("setThreads", Napi::Function::New(env, set_threads));
    exports.Set("getThreads", Napi::Function::New(env, get_threads));
    exports.Set("peakGflops", Napi::Function::New(env, peak_gflops));
    exports.Set("timeGemm", Napi::Function::New(env, time_gemm));
    exports.Set("meanCovariance", Napi::Function::New(env, mean_covariance));
    exports.Set("whitenRows", Napi::Function::New(env, whiten_rows));
    init_mlp(env, exports);
    init_image(env, exports);
    return exports;
}

}  // namespace

}  // namespace ebjs

static Napi::Object init_module(Napi::Env env, Napi::Object exports) { return ebjs::init(env, exports); }

NODE_API_MODULE(embaug_native, init_module)
