// The list of compute backends: the CPU one, always, and the CUDA one when its library
// loads and finds a usable device. Capability comes from the binary, not from a list.
#pragma once

#include <string>
#include <vector>

#include "eb_backend.h"

namespace eb {

struct BackendEntry {
    std::string name, device, reason;  // reason: why it is unavailable
    size_t memory_bytes = 0;
    bool available = false;
};

// Where the addon lives; the optional backend libraries sit beside it.
void registry_set_library_dir(const std::string &dir);
std::vector<BackendEntry> list_backends();
// EB_OK and out filled, or EB_ERR_UNSUPPORTED with a sentence in err.
int get_backend(const std::string &name, eb_backend &out, std::string &err);

}  // namespace eb
