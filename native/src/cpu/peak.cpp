// Measured FMA peak of this CPU, so benchmarks can report GEMM throughput as a fraction of
// what the cores can do rather than as a bare number. Independent accumulator chains hide
// the FMA latency; the widest FMA the CPU has is used (AVX-512, else AVX2, else scalar), since
// OpenBLAS's kernels use it too: an AVX2 figure on an AVX-512 machine reads below its GEMMs.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "eb_backend.h"

namespace {

constexpr int kChains = 10;

__attribute__((target("avx2,fma"))) double fma_flops_avx2(long iters) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; c++) acc[c] = _mm256_set1_ps(0.001f * c);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < kChains; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float sink = 0;
    for (int c = 0; c < kChains; c++) {
        alignas(32) float v[8];
        _mm256_store_ps(v, acc[c]);
        sink += v[0];
    }
    volatile float keep = sink;
    (void)keep;
    return (double)iters * kChains * 8 * 2;
}

__attribute__((target("avx512f"))) double fma_flops_avx512(long iters) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; c++) acc[c] = _mm512_set1_ps(0.001f * c);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < kChains; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    float sink = 0;
    for (int c = 0; c < kChains; c++) sink += _mm512_reduce_add_ps(acc[c]);
    volatile float keep = sink;
    (void)keep;
    return (double)iters * kChains * 16 * 2;
}

double fma_flops_scalar(long iters) {
    float acc[kChains];
    for (int c = 0; c < kChains; c++) acc[c] = 0.001f * c;
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < kChains; c++) acc[c] = acc[c] * 0.999999f + 1e-7f;
    volatile float keep = acc[0];
    (void)keep;
    return (double)iters * kChains * 2;
}

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
                flops[t] += avx512 ? fma_flops_avx512(1 << 20) : avx2 ? fma_flops_avx2(1 << 20) : fma_flops_scalar(1 << 20);
        });
    for (auto &th : pool) th.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double total = 0;
    for (double f : flops) total += f;
    return total / dt / 1e9;
}
