#pragma once
#include <napi.h>

namespace ebjs {
Napi::Object init_mlp(Napi::Env env, Napi::Object exports);
}
