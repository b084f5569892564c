// Shared by the wrappers: turning eb_status codes into JS errors with a stable `code`,
// and the few argument guards the TypeScript layer cannot make redundant.
#pragma once

#include <napi.h>

#include <string>

#include "eb_backend.h"

namespace ebjs {

inline const char *status_code(int st) {
    switch (st) {
    case EB_ERR_ALLOC: return "E_NATIVE_ALLOC";
    case EB_ERR_DEVICE: return "E_NATIVE_DEVICE";
    case EB_ERR_ARG: return "E_ARG";
    case EB_ERR_UNSUPPORTED: return "E_BACKEND_UNAVAILABLE";
    case EB_ERR_CANCELLED: return "E_CANCELLED";
    case EB_ERR_NONFINITE: return "E_NONFINITE";
    default: return "E_NATIVE";
    }
}

inline Napi::Error make_error(Napi::Env env, const char *code, const std::string &message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Value().Set("code", Napi::String::New(env, code));
    return e;
}

inline Napi::Error status_error(Napi::Env env, int st, const std::string &message) {
    return make_error(env, status_code(st), message);
}

template <typename T>
T *typed_data(const Napi::Value &v) {
    auto arr = v.As<Napi::TypedArrayOf<T>>();
    return arr.Data();
}

}  // namespace ebjs
