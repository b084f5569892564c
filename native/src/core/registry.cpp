#include "registry.h"

#include <dlfcn.h>

#include <mutex>

namespace eb {

namespace {

// Backends shipped as optional shared libraries beside the addon, loaded on first use. A new
// one is a row here and a library that exports its init function; nothing else names it.
struct Loadable {
    const char *name, *library, *init_symbol, *requirement;
};
constexpr Loadable kLoadable[] = {
    {.name = "cuda",
     .library = "libembaug_cuda.so",
     .init_symbol = "eb_cuda_backend_init",
     .requirement = "it is built only where nvcc is found, and needs the CUDA runtime"},
};
constexpr size_t kLoadableCount = sizeof kLoadable / sizeof kLoadable[0];

struct Loaded {
    std::once_flag once;
    bool ok = false;
    eb_backend backend{};
    std::string reason;
};

std::string g_dir;
Loaded g_loaded[kLoadableCount];

void load(const Loadable &spec, Loaded &slot) {
    const std::string path = g_dir + "/" + spec.library;
    void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        slot.reason = std::string("the ") + spec.name + " backend library could not be loaded (" + (why ? why : path) +
                      "): " + spec.requirement;
        return;
    }
    auto init = reinterpret_cast<eb_backend_init_fn>(dlsym(lib, spec.init_symbol));
    if (!init) {
        slot.reason = path + " has no " + spec.init_symbol + ": rebuild the addon";
        return;
    }
    char err[512] = {0};
    if (init(0, &slot.backend, err, sizeof err) != EB_OK) {
        slot.reason = err[0] ? err : std::string("no usable ") + spec.name + " device";
        return;
    }
    if (slot.backend.iface->abi_version != EB_BACKEND_ABI_VERSION) {
        slot.reason = std::string("the ") + spec.name +
                      " backend library was built for another addon version: rebuild the addon";
        return;
    }
    slot.ok = true;
}

Loaded &loaded(size_t i) {
    std::call_once(g_loaded[i].once, load, std::cref(kLoadable[i]), std::ref(g_loaded[i]));
    return g_loaded[i];
}

std::string known_names() {
    std::string s = "'cpu'";
    for (size_t i = 0; i < kLoadableCount; i++) s += std::string(i + 1 == kLoadableCount ? " or '" : ", '") + kLoadable[i].name + "'";
    return s;
}

}  // namespace

void registry_set_library_dir(const std::string &dir) { g_dir = dir; }

std::vector<BackendEntry> list_backends() {
    std::vector<BackendEntry> out;
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    BackendEntry c;
    c.name = cpu.iface->name(cpu.ctx);
    c.device = cpu.iface->device_name(cpu.ctx);
    c.available = true;
    out.push_back(c);
    for (size_t i = 0; i < kLoadableCount; i++) {
        const Loaded &slot = loaded(i);
        BackendEntry e;
        e.name = kLoadable[i].name;
        e.available = slot.ok;
        e.reason = slot.reason;
        if (slot.ok) {
            e.device = slot.backend.iface->device_name(slot.backend.ctx);
            e.memory_bytes = slot.backend.iface->device_memory(slot.backend.ctx);
        }
        out.push_back(e);
    }
    return out;
}

int get_backend(const std::string &name, eb_backend &out, std::string &err) {
    if (name == "cpu") return eb_cpu_backend_init(0, &out);
    for (size_t i = 0; i < kLoadableCount; i++) {
        if (name != kLoadable[i].name) continue;
        const Loaded &slot = loaded(i);
        if (!slot.ok) {
            err = "backend '" + name + "' is unavailable: " + slot.reason;
            return EB_ERR_UNSUPPORTED;
        }
        out = slot.backend;
        return EB_OK;
    }
    err = "unknown backend '" + name + "': expected " + known_names();
    return EB_ERR_UNSUPPORTED;
}

}  // namespace eb
