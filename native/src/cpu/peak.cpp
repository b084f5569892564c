// Measured FMA peak of this CPU, so benchmarks can report GEMM throughput as a fraction of
// what the cores can do rather than as a bare number. Independent accumulator chains hide
// the FMA latency; the widest FMA the CPU has is used (AVX-512, else AVX2, else SSE), since
// OpenBLAS's kernels use it too: an AVX2 figure on an AVX-512 machine reads below its GEMMs.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "eb_backend.h"

namespace {

constexpr int kChains = 10;

// GCC's vector types; acc * a + b contracts to one FMA where the function it is inlined into is
// compiled for FMA (GCC contracts by default in GNU C++ mode).
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

template <typename vec>
__attribute__((always_inline)) inline double fma_chains(long iters) {
    constexpr int W = sizeof(vec) / sizeof(float);
    // A scalar added to a vector is broadcast to every lane.
    vec acc[kChains];
    for (int c = 0; c < kChains; c++) acc[c] = vec{} + 0.001f * c;
    const vec a = vec{} + 0.999999f, b = vec{} + 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < kChains; c++) acc[c] = acc[c] * a + b;
    float sink = 0;
    for (int c = 0; c < kChains; c++) sink += acc[c][0];
    volatile float keep = sink;
    (void)keep;
    return (double)iters * kChains * W * 2;
}

__attribute__((target("avx512f"))) double fma_flops_avx512(long iters) { return fma_chains<v16>(iters); }
__attribute__((target("avx2,fma"))) double fma_flops_avx2(long iters) { return fma_chains<v8>(iters); }
// x86-64's baseline SSE: a multiply and an add where there is no FMA.
double fma_flops_sse(long iters) { return fma_chains<v4>(iters); }

}  // namespace

extern "C" double eb_cpu_peak_gflops(int threads, double seconds) {
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    threads = std::max(1, threads);
    std::vector<double> flops(threads, 0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&, t] {
            while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds)
                flops[t] += avx512 ? fma_flops_avx512(1 << 20) : avx2 ? fma_flops_avx2(1 << 20) : fma_flops_sse(1 << 20);
        });
    for (auto &th : pool) th.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double total = 0;
    for (double f : flops) total += f;
    return total / dt / 1e9;
}
