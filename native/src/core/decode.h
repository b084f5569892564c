// Batch JPEG decoding with libjpeg-turbo. Per-image sharp calls cost about 1 ms each on
// 32x32 CIFAR JPEGs, which would dominate extraction; turbojpeg decodes them in tens of us.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eb {

struct DecodedImage {
    int width = 0, height = 0;
    std::string error;  // empty when decoded
};

// Decodes each JPEG to RGB; images whose size is not (want_w, want_h) are reported as
// errors, so a caller can route them to a resizing decoder. Pixels of image i land at
// out + i * want_h * want_w * 3. With want_w <= 0 it only verifies each image (a full
// decode, which is what finds truncation) and reports its size; out is unused. An image
// whose header declares more than max_pixels pixels is refused from the header alone,
// before anything is allocated for it: a 65500x65500 header would otherwise ask for 12 GB.
void decode_jpegs(const std::vector<std::pair<const uint8_t *, size_t>> &blobs, int want_w, int want_h,
                  int64_t max_pixels, uint8_t *out, std::vector<DecodedImage> &info, int threads);

}  // namespace eb
