#include "inference/core/cpu_features.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LUMEN_X86 1
#endif

namespace lumen::inference {
namespace {

#if LUMEN_X86
struct Regs {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf = 0) {
    Regs r;
    __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
    return r;
}

// XCR0: which register states the OS saves on a context switch. AVX needs XMM|YMM (bits 1,2);
// AVX-512 also needs opmask and the upper ZMM states (bits 5,6,7).
std::uint64_t xgetbv0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned value, int index) { return (value >> index) & 1u; }

void detectX86(CpuFeatures& f) {
    const Regs r0 = cpuid(0);
    const unsigned maxLeaf = r0.eax;
    char vendor[13] = {};
    std::memcpy(vendor + 0, &r0.ebx, 4);
    std::memcpy(vendor + 4, &r0.edx, 4);
    std::memcpy(vendor + 8, &r0.ecx, 4);
    f.vendor = vendor;

    if (cpuid(0x80000000).eax >= 0x80000004) {
        char brand[49] = {};
        for (unsigned i = 0; i < 3; ++i) {
            const Regs r = cpuid(0x80000002 + i);
            std::memcpy(brand + 16 * i + 0, &r.eax, 4);
            std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
            std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
            std::memcpy(brand + 16 * i + 12, &r.edx, 4);
        }
        f.brand = brand;
        const auto first = f.brand.find_first_not_of(' ');
        f.brand = first == std::string::npos ? std::string() : f.brand.substr(first);
    }
    if (maxLeaf < 1) return;

    const Regs r1 = cpuid(1);
    f.sse42 = bit(r1.ecx, 20);
    const bool osxsave = bit(r1.ecx, 27);
    const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const bool osAvx = (xcr0 & 0x6) == 0x6;
    const bool osAvx512 = osAvx && (xcr0 & 0xE0) == 0xE0;

    f.avx = osAvx && bit(r1.ecx, 28);
    f.fma = f.avx && bit(r1.ecx, 12);
    f.f16c = f.avx && bit(r1.ecx, 29);
    if (maxLeaf < 7) return;

    const Regs r7 = cpuid(7, 0);
    f.avx2 = f.avx && bit(r7.ebx, 5);
    f.avx512f = osAvx512 && bit(r7.ebx, 16);
    f.avx512bw = f.avx512f && bit(r7.ebx, 30);
    f.avx512vl = f.avx512f && bit(r7.ebx, 31);
    f.avx512vnni = f.avx512f && bit(r7.ecx, 11);
    f.avx512vbmi = f.avx512f && bit(r7.ecx, 1);
    if (r7.eax >= 1) {
        const Regs r71 = cpuid(7, 1);
        f.avxVnni = f.avx && bit(r71.eax, 4);
        f.avx512bf16 = f.avx512f && bit(r71.eax, 5);
    }
}
#endif

// Physical cores from Linux's topology files: one core per distinct (package, core id).
// Falls back to the logical count where the files are missing (containers, other OSes).
int countPhysicalCores(int logical) {
    std::set<std::pair<std::string, std::string>> cores;
    for (int cpu = 0; cpu < logical; ++cpu) {
        const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        std::ifstream package(base + "physical_package_id");
        std::ifstream core(base + "core_id");
        std::string p, c;
        if (!(package >> p) || !(core >> c)) return logical;
        cores.emplace(p, c);
    }
    return cores.empty() ? logical : static_cast<int>(cores.size());
}

CpuFeatures detect() {
    CpuFeatures f;
#if LUMEN_X86
    detectX86(f);
#endif
    f.logicalCores = std::max(1u, std::thread::hardware_concurrency());
    f.physicalCores = std::clamp(countPhysicalCores(f.logicalCores), 1, f.logicalCores);
    return f;
}

}  // namespace

std::string CpuFeatures::summary() const {
    std::string s;
    const std::pair<bool, const char*> flags[] = {
        {sse42, "SSE4.2"},     {avx, "AVX"},           {avx2, "AVX2"},
        {fma, "FMA"},          {f16c, "F16C"},         {avxVnni, "AVX-VNNI"},
        {avx512f, "AVX512F"},  {avx512bw, "AVX512BW"}, {avx512vl, "AVX512VL"},
        {avx512vbmi, "AVX512-VBMI"}, {avx512vnni, "AVX512-VNNI"}, {avx512bf16, "AVX512-BF16"}};
    for (const auto& [on, name] : flags) {
        if (!on) continue;
        if (!s.empty()) s += ' ';
        s += name;
    }
    return s.empty() ? std::string("(no SIMD extensions)") : s;
}

const CpuFeatures& cpuFeatures() {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace lumen::inference
