// Module entry: registers the wrappers and the small free functions.
#include <napi.h>

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

Napi::Object init(Napi::Env env, Napi::Object exports) {
    exports.Set("abiVersion", EB_BACKEND_ABI_VERSION);
    exports.Set("listBackends", Napi::Function::New(env, list_backends));
    exports.Set("setLibraryDir", Napi::Function::New(env, set_library_dir));
    exports.Set("setThreads", Napi::Function::New(env, set_threads));
    exports.Set("getThreads", Napi::Function::New(env, get_threads));
    init_mlp(env, exports);
    init_image(env, exports);
    return exports;
}

}  // namespace

}  // namespace ebjs

static Napi::Object init_module(Napi::Env env, Napi::Object exports) { return ebjs::init(env, exports); }

NODE_API_MODULE(embaug_native, init_module)
