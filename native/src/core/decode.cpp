#include "decode.h"

#include <turbojpeg.h>

#include <algorithm>
#include <new>
#include <thread>
#include <vector>

namespace eb {

namespace {

void decode_range(const std::vector<std::pair<const uint8_t *, size_t>> &blobs, int want_w, int want_h,
                  int64_t max_pixels, uint8_t *out, std::vector<DecodedImage> &info, size_t begin, size_t end) {
    tjhandle tj = tjInitDecompress();
    const size_t stride = (size_t)want_w * want_h * 3;
    for (size_t i = begin; i < end; i++) {
        DecodedImage &d = info[i];
        int w = 0, h = 0, sub = 0, cs = 0;
        if (!tj || tjDecompressHeader3(tj, blobs[i].first, (unsigned long)blobs[i].second, &w, &h, &sub, &cs) != 0) {
            d.error = std::string("not a readable JPEG: ") + (tj ? tjGetErrorStr2(tj) : "turbojpeg failed to start");
            continue;
        }
        d.width = w;
        d.height = h;
        if ((int64_t)w * h > max_pixels) {
            d.error = "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels exceeds the limit of " +
                      std::to_string(max_pixels) + " pixels";
            continue;
        }
        if (want_w <= 0) {
            // Verify-only mode: decode fully (truncation shows only then) into scratch. This may run
            // on a std::thread, where an uncaught bad_alloc would terminate the process.
            std::vector<uint8_t> scratch;
            try {
                scratch.resize((size_t)w * h * 3);
            } catch (const std::bad_alloc &) {
                d.error = "out of memory decoding a " + std::to_string(w) + "x" + std::to_string(h) + " JPEG";
                continue;
            }
            if (tjDecompress2(tj, blobs[i].first, (unsigned long)blobs[i].second, scratch.data(), w, 0, h, TJPF_RGB,
                              TJFLAG_ACCURATEDCT) != 0)
                d.error = std::string("corrupt or truncated JPEG: ") + tjGetErrorStr2(tj);
            continue;
        }
        if (w != want_w || h != want_h) {
            d.error = "size " + std::to_string(w) + "x" + std::to_string(h) + " differs from " + std::to_string(want_w) +
                      "x" + std::to_string(want_h);
            continue;
        }
        // TJFLAG_ACCURATEDCT matches libjpeg's default islow IDCT, which PIL and sharp use.
        // Warnings count as failures too: "premature end of data" is a truncated file.
        if (tjDecompress2(tj, blobs[i].first, (unsigned long)blobs[i].second, out + i * stride, w, 0, h, TJPF_RGB,
                          TJFLAG_ACCURATEDCT) != 0)
            d.error = std::string("corrupt or truncated JPEG: ") + tjGetErrorStr2(tj);
    }
    if (tj) tjDestroy(tj);
}

}  // namespace

void decode_jpegs(const std::vector<std::pair<const uint8_t *, size_t>> &blobs, int want_w, int want_h,
                  int64_t max_pixels, uint8_t *out, std::vector<DecodedImage> &info, int threads) {
    info.assign(blobs.size(), DecodedImage());
    const size_t n = blobs.size();
    const size_t t = std::max<size_t>(1, std::min<size_t>(threads > 0 ? threads : 1, n / 64 + 1));
    // One thread is the caller's own (a libuv worker): no thread started and joined per call.
    if (t == 1) return decode_range(blobs, want_w, want_h, max_pixels, out, info, 0, n);
    std::vector<std::thread> pool;
    const size_t per = (n + t - 1) / t;
    for (size_t k = 0; k < t; k++) {
        const size_t b = k * per, e = std::min(n, b + per);
        if (b < e) pool.emplace_back(decode_range, std::cref(blobs), want_w, want_h, max_pixels, out, std::ref(info), b, e);
    }
    for (auto &th : pool) th.join();
}

}  // namespace eb
