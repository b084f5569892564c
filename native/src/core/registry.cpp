#include "registry.h"

#include <dlfcn.h>

#include <mutex>

namespace eb {

namespace {

std::string g_dir;
std::once_flag g_cuda_once;
bool g_cuda_ok = false;
eb_backend g_cuda{};
std::string g_cuda_reason;

void load_cuda() {
    const std::string path = g_dir + "/libembaug_cuda.so";
    void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        g_cuda_reason = std::string("the CUDA backend library could not be loaded (") + (why ? why : path) +
                        "): it is built only where nvcc is found, and needs the CUDA runtime";
        return;
    }
    auto init = reinterpret_cast<eb_backend_init_fn>(dlsym(lib, "eb_cuda_backend_init"));
    if (!init) {
        g_cuda_reason = path + " has no eb_cuda_backend_init: rebuild the addon";
        return;
    }
    char err[512] = {0};
    if (init(0, &g_cuda, err, sizeof err) != EB_OK) {
        g_cuda_reason = err[0] ? err : "no usable CUDA device";
        return;
    }
    if (g_cuda.iface->abi_version != EB_BACKEND_ABI_VERSION) {
        g_cuda_reason = "the CUDA backend library was built for another addon version: rebuild the addon";
        return;
    }
    g_cuda_ok = true;
}

}  // namespace

void registry_set_library_dir(const std::string &dir) { g_dir = dir; }

std::vector<BackendEntry> list_backends() {
    std::vector<BackendEntry> out;
    eb_backend cpu;
    eb_cpu_backend_init(0, &cpu);
    BackendEntry c;
    c.name = "cpu";
    c.device = cpu.iface->device_name(cpu.ctx);
    c.available = true;
    out.push_back(c);
    std::call_once(g_cuda_once, load_cuda);
    BackendEntry g;
    g.name = "cuda";
    g.available = g_cuda_ok;
    g.reason = g_cuda_reason;
    if (g_cuda_ok) {
        g.device = g_cuda.iface->device_name(g_cuda.ctx);
        g.memory_bytes = g_cuda.iface->device_memory(g_cuda.ctx);
    }
    out.push_back(g);
    return out;
}

int get_backend(const std::string &name, eb_backend &out, std::string &err) {
    if (name == "cpu") return eb_cpu_backend_init(0, &out);
    if (name == "cuda") {
        std::call_once(g_cuda_once, load_cuda);
        if (!g_cuda_ok) {
            err = "backend 'cuda' is unavailable: " + g_cuda_reason;
            return EB_ERR_UNSUPPORTED;
        }
        out = g_cuda;
        return EB_OK;
    }
    err = "unknown backend '" + name + "': expected 'cpu' or 'cuda'";
    return EB_ERR_UNSUPPORTED;
}

}  // namespace eb
