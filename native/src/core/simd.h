#pragma once

// Loops over independent elements (a step's parameters and activations, the rows of a
// Gaussian's statistics), built for AVX-512 beside the baseline (picked at load time). Each
// element gets the same IEEE operations in the same order whatever the vector width, and
// nothing is contracted into an FMA (the files that use this are built with -ffp-contract=off),
// so every clone gives the same bits.
#if defined(__x86_64__) && !defined(EB_USE_EIGEN)
#define EB_SIMD_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define EB_SIMD_CLONES
#endif
