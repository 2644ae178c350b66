#pragma once
// What the CPU we run on can do, read once at run time. The SIMD kernels are chosen from this,
// so one binary runs on every x86-64 CPU and uses AVX2/AVX-512 where the CPU (and the OS, for
// the wider registers) supports them.

#include <string>

namespace lumen::inference {

struct CpuFeatures {
    std::string vendor;
    std::string brand;
    bool sse42 = false;
    bool avx = false;
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avxVnni = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512vnni = false;
    bool avx512vbmi = false;
    bool avx512bf16 = false;
    int logicalCores = 1;
    int physicalCores = 1;

    // "AVX2 FMA F16C AVX512F ..." for logs and `lumen-cli info`.
    std::string summary() const;
};

// Detected once, then cached; thread-safe.
const CpuFeatures& cpuFeatures();

}  // namespace lumen::inference
