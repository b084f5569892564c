#pragma once
#include <napi.h>

namespace ebjs {
// augment(job) / augmentAsync(job) and decodeJpegs(blobs, width, height, threads).
Napi::Object init_image(Napi::Env env, Napi::Object exports);
}
