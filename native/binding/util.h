// Shared by the wrappers: turning eb_status codes into JS errors with a stable `code`,
// and the few argument guards the TypeScript layer cannot make redundant.
#pragma once

#include <napi.h>

#include <new>
#include <string>

#include "../src/core/failure.h"
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

// Every entry point runs its body through this: an exception of the core becomes a JS error
// with a code (E_NATIVE_ALLOC for memory) naming what failed, never std::terminate. A
// Napi::Error passes through to node-addon-api, which throws it in JS.
template <typename F>
auto guarded(Napi::Env env, const char *what, F &&body) -> decltype(body()) {
    try {
        return body();
    } catch (const Napi::Error &) {
        throw;
    } catch (const std::bad_alloc &) {
        throw make_error(env, "E_NATIVE_ALLOC", std::string(what) + ": out of memory");
    } catch (const eb::Failure &e) {
        throw status_error(env, e.status, std::string(what) + ": " + e.what());
    } catch (const std::exception &e) {
        throw make_error(env, "E_NATIVE", std::string(what) + ": " + e.what());
    }
}

// The same inside an async worker's Execute (no JS there): the status and message to report.
template <typename F>
int guarded_status(std::string &err, F &&body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        err = "out of memory";
        return EB_ERR_ALLOC;
    } catch (const eb::Failure &e) {
        err = e.what();
        return e.status;
    } catch (const std::exception &e) {
        err = e.what();
        return -1;  // no eb_status fits: reported as E_NATIVE
    }
}

template <typename T>
T *typed_data(const Napi::Value &v) {
    auto arr = v.As<Napi::TypedArrayOf<T>>();
    return arr.Data();
}

}  // namespace ebjs
