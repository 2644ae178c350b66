// Backend parity: the CPU backend's fast kernels (SIMD, threads, 8-bit activations) against the
// scalar reference for every op and weight type, on shapes including odd sizes; and the
// thread pool. Tolerances:
//  - float weights (F32/F16/BF16): |fast - reference| <= 1e-5 * sum|w*x| + 1e-6
//  - Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 (activations quantized to 8 bits per 32) and the K-quants Q2_K to
//    Q6_K (per 256): the rounding of each activation is at most d/2, so |fast - reference| <=
//    sum over activation blocks of (d_b / 2) * sum|w| + 1e-5 * sum|w*x|

#include <QtTest>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <array>
#include <random>
#include <thread>

#include "inference/core/backend.h"
#include "inference/core/cpu_features.h"
#include "inference/core/thread_pool.h"
#include "inference/cpu/delta_net.h"
#include "inference/cpu/kernels.h"
#include "inference/formats/half.h"
#include "inference/formats/quants.h"
#include "random_matrix.h"

using namespace lumen::inference;

namespace {

using lumen::test::Matrix;
using lumen::test::randomMatrix;

// Four rows of `blocks` random activation blocks (normal, sd 2), quantized as the kernels take them.
template <class Block>
std::vector<Block> randomActivations(int blocks, unsigned seed) {
    const int n = blocks * static_cast<int>(sizeof(Block::q));
    std::vector<float> x(static_cast<std::size_t>(4 * n));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (auto& v : x) v = normal(rng);
    std::vector<Block> a(static_cast<std::size_t>(4 * blocks));
    for (int r = 0; r < 4; ++r) cpu::quantizeActivations(x.data() + r * n, n, a.data() + r * blocks);
    return a;
}

}  // namespace

// One packed kernel against its scalar reference (see avx512PackedKernels).
template <class Block>
void checkPacked(DType t, const cpu::PackedKernel<Block>& p, float (*reference)(const std::uint8_t*, const Block*, std::int64_t), std::initializer_list<int> blockCounts) {
    QVERIFY(p.dotRows);
    constexpr int kBlockValues = static_cast<int>(sizeof(Block::q));
    for (int blocks : blockCounts) {
        const int n = blocks * kBlockValues, wRows = 5;
        const Matrix m = randomMatrix(t, n, wRows, 31 + blocks);
        const std::int64_t rowBytes = m.tensor.rowBytes();
        std::vector<float> x(static_cast<std::size_t>(4 * n));
        std::mt19937 rng(static_cast<unsigned>(blocks));
        std::normal_distribution<float> normal(0.0f, 2.0f);
        for (auto& v : x) v = normal(rng);
        std::vector<Block> a(static_cast<std::size_t>(4 * blocks));
        for (int r = 0; r < 4; ++r) cpu::quantizeActivations(x.data() + r * n, n, a.data() + r * blocks);
        const std::int64_t stride = p.bytes(blocks);
        QCOMPARE(stride % 64, std::int64_t{0});
        std::vector<std::uint8_t> storage(static_cast<std::size_t>(4 * stride + 64));
        auto* packed = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) & ~std::uintptr_t{63});
        for (int r = 0; r < 4; ++r) p.pack(a.data() + r * blocks, blocks, packed + r * stride);
        std::vector<float> all(4 * wRows);
        p.dotRows(m.bytes.data(), rowBytes, wRows, packed, blocks, 4, all.data(), wRows);
        for (int rows = 1; rows <= 4; ++rows)
            for (int j = 0; j < wRows; ++j) {
                float one[4];
                p.dotRows(m.bytes.data() + j * rowBytes, rowBytes, 1, packed, blocks, rows, one, 1);
                for (int r = 0; r < rows; ++r) QCOMPARE(one[r], all[static_cast<std::size_t>(r * wRows + j)]);
            }
        for (int r = 0; r < 4; ++r)
            for (int j = 0; j < wRows; ++j) {
                const float want = reference(m.bytes.data() + j * rowBytes, a.data() + r * blocks, blocks);
                const float got = all[static_cast<std::size_t>(r * wRows + j)];
                QVERIFY2(std::fabs(got - want) <= 1e-5f * (std::fabs(want) + 1.0f),
                         qPrintable(QStringLiteral("%1, %2 blocks, row %3: %4 vs %5").arg(name(t).data()).arg(blocks).arg(j).arg(got).arg(want)));
            }
    }
}

class TestCpuBackend : public QObject {
    Q_OBJECT
private slots:
    void matvecParity_data() {
        QTest::addColumn<int>("type");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("rows");
        for (DType t : kAllDTypes) {
            const int block = static_cast<int>(traits(t).blockSize);
            for (auto [cols, rows] : {std::pair{block == 1 ? 37 : block, 3}, std::pair{block == 1 ? 1001 : 4 * block, 129},
                                      std::pair{block == 1 ? 4096 : 16 * block, 67}}) {
                QTest::newRow(qPrintable(QStringLiteral("%1 %2x%3").arg(QString::fromLatin1(name(t).data())).arg(cols).arg(rows)))
                    << static_cast<int>(t) << cols << rows;
            }
        }
    }
    void matvecParity() {
        QFETCH(int, type);
        QFETCH(int, cols);
        QFETCH(int, rows);
        const DType t = static_cast<DType>(type);
        const Matrix m = randomMatrix(t, cols, rows, 7);
        std::mt19937 rng(3);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<std::size_t>(cols));
        for (auto& v : x) v = normal(rng);
        auto reference = makeCpuBackend({.threads = 1, .simd = false});
        auto fast = makeCpuBackend({.threads = 2, .simd = true, .minParallelWork = 0});
        std::vector<float> yRef(static_cast<std::size_t>(rows)), yFast(static_cast<std::size_t>(rows));
        reference->matvec(m.tensor, x.data(), yRef.data());
        fast->matvec(m.tensor, x.data(), yFast.data());
        for (int r = 0; r < rows; ++r) {
            double absProducts = 0, bound = 0;
            for (int c = 0; c < cols; ++c) absProducts += std::fabs(static_cast<double>(m.values[static_cast<std::size_t>(r * cols + c)]) * x[static_cast<std::size_t>(c)]);
            const int actBlock = (t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1 ||
                                  t == DType::IQ4_NL || t == DType::IQ4_XS || t == DType::MXFP4) ? 32
                                 : (t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K) ? 256
                                                                                                                                      : 0;
            if (actBlock > 0) {
                for (int b = 0; b < cols / actBlock; ++b) {
                    float amax = 0;
                    double absW = 0;
                    for (int j = 0; j < actBlock; ++j) {
                        amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(b * actBlock + j)]));
                        absW += std::fabs(m.values[static_cast<std::size_t>(r * cols + b * actBlock + j)]);
                    }
                    bound += amax / 127.0 / 2.0 * absW;
                }
                bound += 1e-5 * absProducts;
            } else if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
                bound = 1e-5 * absProducts + 1e-6;
            } else {
                bound = 1e-6 * absProducts + 1e-6;
            }
            const double diff = std::fabs(static_cast<double>(yFast[static_cast<std::size_t>(r)]) - yRef[static_cast<std::size_t>(r)]);
            if (diff > bound)
                QFAIL(qPrintable(QStringLiteral("row %1: fast %2, reference %3, bound %4").arg(r).arg(yFast[static_cast<std::size_t>(r)]).arg(yRef[static_cast<std::size_t>(r)]).arg(bound)));
        }
    }

    // The AVX2 kernels against the scalar kernels of the same (8-bit activation) arithmetic.
    // The VNNI variants (AVX-VNNI and AVX512-VNNI) give the AVX2 kernels' results bit for bit, one
    // row and 2-4 rows, packed Q4_0 included.
    void vnniMatchesAvx2Exactly() {
        const auto& f = cpuFeatures();
        if (!f.avx2 || !f.fma || !f.f16c || (!f.avxVnni && !(f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni)))
            QSKIP("this CPU has neither AVX-VNNI nor AVX512-VNNI");
        const cpu::Kernels& avx2 = *cpu::avx2Kernels();
        std::vector<const cpu::Kernels*> sets;
        if (f.avxVnni) sets.push_back(cpu::avx2AvxVnniKernels());
        if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni) sets.push_back(cpu::avx2VnniKernels());
        for (const cpu::Kernels* vnni : sets)
            for (DType t : {DType::Q8_0, DType::Q4_0}) {
                const int blocks = 11;
                const Matrix m = randomMatrix(t, blocks * 32, 1, 17);
                const auto a = randomActivations<cpu::BlockQ8>(blocks, 3);
                const bool q8 = t == DType::Q8_0;
                QCOMPARE((q8 ? vnni->dotQ8_0 : vnni->dotQ4_0)(m.bytes.data(), a.data(), blocks), (q8 ? avx2.dotQ8_0 : avx2.dotQ4_0)(m.bytes.data(), a.data(), blocks));
                for (int rows = 1; rows <= 4; ++rows) {
                    float got[4], want[4];
                    (q8 ? vnni->dotRowsQ8_0 : vnni->dotRowsQ4_0)(m.bytes.data(), a.data(), blocks, rows, got);
                    (q8 ? avx2.dotRowsQ8_0 : avx2.dotRowsQ4_0)(m.bytes.data(), a.data(), blocks, rows, want);
                    for (int r = 0; r < rows; ++r) QCOMPARE(got[r], want[r]);
                }
                // the packed Q4_0 kernels too: the same integers, so the same bits
                if (q8) continue;
                const auto& packedVnni = vnni->packedQ4_0;
                const auto& packedAvx2 = avx2.packedQ4_0;
                std::vector<std::uint8_t> storage(static_cast<std::size_t>(4 * packedAvx2.bytes(blocks) + 64));
                auto* packed = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) & ~std::uintptr_t{63});
                for (int r = 0; r < 4; ++r) packedAvx2.pack(a.data() + r * blocks, blocks, packed + r * packedAvx2.bytes(blocks));
                float got[4], want[4];
                packedVnni.dotRows(m.bytes.data(), m.tensor.rowBytes(), 1, packed, blocks, 4, got, 1);
                packedAvx2.dotRows(m.bytes.data(), m.tensor.rowBytes(), 1, packed, blocks, 4, want, 1);
                for (int r = 0; r < 4; ++r) QCOMPARE(got[r], want[r]);
            }
        if (qEnvironmentVariableIsEmpty("LUMEN_CPU_KERNELS") && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni)  // the best set, unless asked for another
            QCOMPARE(QString(cpu::bestKernels().name), QString(f.avx512vbmi ? "AVX-512" : "AVX2+VNNI"));
    }

    // Each SIMD set's float tiles (1-2 weight rows x 1-4 activation rows) give its dots' bits, so
    // a prompt's products equal one token's; odd widths exercise the 16-, 8- and scalar tails.
    void floatTilesMatchDotsExactly() {
        const auto& f = cpuFeatures();
        if (!cpu::avx2Kernels() || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        std::vector<const cpu::Kernels*> sets{cpu::avx2Kernels()};
        if (cpu::avx512Kernels() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.avx512vbmi) sets.push_back(cpu::avx512Kernels());
        for (const cpu::Kernels* k : sets)
            for (DType t : {DType::F32, DType::F16, DType::BF16})
                for (int cols : {7, 37, 100, 1029}) {
                    const Matrix m = randomMatrix(t, cols, 2, static_cast<unsigned>(cols));
                    std::vector<float> x(static_cast<std::size_t>(4 * cols));
                    std::mt19937 rng(static_cast<unsigned>(cols) + 1);
                    std::normal_distribution<float> normal(0.0f, 1.0f);
                    for (auto& v : x) v = normal(rng);
                    const std::int64_t rowBytes = m.tensor.rowBytes();
                    const auto tile = t == DType::F32 ? k->tileF32 : t == DType::F16 ? k->tileF16 : k->tileBF16;
                    for (int wRows = 1; wRows <= cpu::kMaxTileWeightRows; ++wRows)
                        for (int xRows = 1; xRows <= cpu::kMaxDotRows; ++xRows) {
                            float out[cpu::kMaxTileWeightRows * cpu::kMaxDotRows];
                            tile(m.bytes.data(), rowBytes, wRows, x.data(), cols, xRows, out);
                            for (int j = 0; j < wRows; ++j)
                                for (int r = 0; r < xRows; ++r) {
                                    const std::uint8_t* w = m.bytes.data() + j * rowBytes;
                                    const float* xr = x.data() + r * cols;
                                    const float want = t == DType::F32   ? k->dotF32(reinterpret_cast<const float*>(w), xr, cols)
                                                       : t == DType::F16 ? k->dotF16(reinterpret_cast<const std::uint16_t*>(w), xr, cols)
                                                                         : k->dotBF16(reinterpret_cast<const std::uint16_t*>(w), xr, cols);
                                    QVERIFY2(out[j * cpu::kMaxDotRows + r] == want,
                                             qPrintable(QStringLiteral("%1 %2 cols %3: %4 vs %5").arg(k->name).arg(name(t).data()).arg(cols).arg(out[j * cpu::kMaxDotRows + r]).arg(want)));
                                }
                        }
                }
    }

    // Every set's activation quantizer gives quantizeActivations' bytes, ties (x / d exactly
    // n + 0.5) rounded away from zero like lround.
    void simdQuantizationMatchesScalar() {
        const auto& f = cpuFeatures();
        if (!cpu::avx2Kernels() || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        std::vector<float> x(32 * 40);
        std::mt19937 rng(9);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        for (auto& v : x) v = normal(rng);
        for (int j = 0; j < 32; ++j) x[static_cast<std::size_t>(j)] = j == 0 ? 127.0f : (j % 2 ? 1.0f : -1.0f) * (static_cast<float>(j) + 0.5f);  // d = 1: ties
        for (int j = 32; j < 64; ++j) x[static_cast<std::size_t>(j)] = 0.0f;  // an all-zero block
        x[70] = -1e-30f;
        std::vector<cpu::BlockQ8> want(40), got(40);
        cpu::quantizeActivations(x.data(), static_cast<std::int64_t>(x.size()), want.data());
        QCOMPARE(want[0].q[3], std::int8_t{4});   // 3.5 -> 4
        QCOMPARE(want[0].q[2], std::int8_t{-3});  // -2.5 -> -3
        for (const cpu::Kernels* k : {cpu::avx2Kernels(), cpu::avx2VnniKernels(), cpu::avx512Kernels()}) {
            std::fill(got.begin(), got.end(), cpu::BlockQ8{});
            k->quantizeQ8(x.data(), static_cast<std::int64_t>(x.size()), got.data());
            for (std::size_t b = 0; b < want.size(); ++b) {
                QCOMPARE(got[b].d, want[b].d);
                QCOMPARE(got[b].s, want[b].s);
                QVERIFY2(std::memcmp(got[b].q, want[b].q, 32) == 0, qPrintable(QStringLiteral("%1: block %2").arg(k->name).arg(b)));
            }
        }
        // The K-quants' 256-value blocks, with their 16-value sums (block 0 keeps d = 1 and the ties).
        std::vector<cpu::BlockQ8K> wantK(5), gotK(5);
        cpu::quantizeActivations(x.data(), static_cast<std::int64_t>(x.size()), wantK.data());
        QCOMPARE(wantK[0].d, 1.0f);
        for (const cpu::Kernels* k : {cpu::avx2Kernels(), cpu::avx2VnniKernels(), cpu::avx512Kernels()}) {
            std::fill(gotK.begin(), gotK.end(), cpu::BlockQ8K{});
            k->quantizeQ8K(x.data(), static_cast<std::int64_t>(x.size()), gotK.data());
            for (std::size_t b = 0; b < wantK.size(); ++b) {
                QCOMPARE(gotK[b].d, wantK[b].d);
                QVERIFY2(std::memcmp(gotK[b].q, wantK[b].q, 256) == 0, qPrintable(QStringLiteral("%1: K block %2").arg(k->name).arg(b)));
                QVERIFY2(std::memcmp(gotK[b].bsums, wantK[b].bsums, sizeof wantK[b].bsums) == 0, qPrintable(QStringLiteral("%1: K block %2 sums").arg(k->name).arg(b)));
            }
        }
    }

    // The SIMD float -> half conversion (the KV cache's stores) gives floatToHalf's bits: ties to
    // even, subnormal halves, overflow to infinity, signed zeros.
    void simdToHalfMatchesScalar() {
        const auto& f = cpuFeatures();
        if (!cpu::avx2Kernels() || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f, -1e6f, INFINITY, -INFINITY, 6.1e-5f, 5.96e-8f, 2.98e-8f, 2.99e-8f, -3e-6f,
                                1.0f + 1.0f / 2048.0f, 1.0f + 3.0f / 2048.0f, 1e-30f};
        std::mt19937 rng(5);
        std::normal_distribution<float> normal(0.0f, 4.0f);
        for (int i = 0; i < 1000; ++i) x.push_back(normal(rng) * std::pow(10.0f, static_cast<float>(i % 12 - 8)));
        std::vector<std::uint16_t> got(x.size());
        for (const cpu::Kernels* k : {cpu::avx2Kernels(), cpu::avx2VnniKernels(), cpu::avx512Kernels()}) {
            k->toHalf(x.data(), static_cast<std::int64_t>(x.size()), got.data());
            for (std::size_t i = 0; i < x.size(); ++i)
                QVERIFY2(got[i] == floatToHalf(x[i]), qPrintable(QStringLiteral("%1: %2 -> %3, want %4").arg(k->name).arg(static_cast<double>(x[i])).arg(got[i]).arg(floatToHalf(x[i]))));
        }
    }

    // LUMEN_CPU_KERNELS names a set in any case; a set this CPU cannot run, or no set, is refused.
    void kernelSetsByName() {
        const auto& f = cpuFeatures();
        QCOMPARE(cpu::runnableKernels("scalar"), &cpu::scalarKernels());
        QCOMPARE(cpu::runnableKernels("SSE9"), nullptr);
        QCOMPARE(cpu::runnableKernels(""), nullptr);
        const bool avx2 = f.avx2 && f.fma && f.f16c;
        QCOMPARE(cpu::runnableKernels("AVX2"), avx2 ? cpu::avx2Kernels() : nullptr);
        QCOMPARE(cpu::runnableKernels("avx2+AVX-VNNI"), avx2 && f.avxVnni ? cpu::avx2AvxVnniKernels() : nullptr);
        const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.avx512vbmi;
        QCOMPARE(cpu::runnableKernels("avx-512"), avx512 ? cpu::avx512Kernels() : nullptr);
        // the best set is one of them
        const cpu::Kernels* best = &cpu::bestKernels();
        QVERIFY(best == cpu::runnableKernels(best->name));
    }

    // The AVX2 sets' K-quant row kernels (Q4_K, Q6_K) give the same bits for one activation
    // row as for 2-4 at once, so a prompt's logits equal one token at a time; and they equal the
    // one-row dots.
    void avx2KQuantRows() {
        const auto& f = cpuFeatures();
        if (!cpu::avx2Kernels() || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        const int blocks = 5;
        const auto a = randomActivations<cpu::BlockQ8K>(blocks, 47);
        for (DType t : {DType::Q4_K, DType::Q6_K}) {
            const Matrix m = randomMatrix(t, blocks * 256, 1, 45);
            const cpu::Kernels& k = *cpu::avx2Kernels();
            const auto rows = t == DType::Q6_K ? k.dotRowsQ6_K : k.dotRowsQ4_K;
            const auto one = t == DType::Q6_K ? k.dotQ6_K : k.dotQ4_K;
            for (int r = 0; r < 4; ++r) {
                const float want = one(m.bytes.data(), a.data() + r * blocks, blocks);
                for (int count = 1; count <= 4 - r; ++count) {
                    float got[4];
                    rows(m.bytes.data(), a.data() + r * blocks, blocks, count, got);
                    QVERIFY2(got[0] == want, qPrintable(QStringLiteral("%1 row %2 of %3: %4 vs %5").arg(name(t).data()).arg(r).arg(count).arg(got[0]).arg(want)));
                }
            }
        }
    }

    // The AVX-512 set's Q6_K kernel: the AVX2 kernel's value within float rounding (the same
    // integer sums per super-block, summed across lanes once at the end), and the same bits for
    // one row and for 2-4 rows.
    void avx512Q6K() {
        const cpu::Kernels* k = cpu::avx512Kernels();
        const auto& f = cpuFeatures();
        if (!k || !f.avx2 || !f.avx512f || !f.avx512bw || !f.avx512vl || !f.avx512vnni || !f.avx512vbmi) QSKIP("this CPU has no AVX-512 VNNI and VBMI");
        const int blocks = 5;
        const Matrix m = randomMatrix(DType::Q6_K, blocks * 256, 1, 41);
        const auto a = randomActivations<cpu::BlockQ8K>(blocks, 43);
        float four[4], avx2[4];
        k->dotRowsQ6_K(m.bytes.data(), a.data(), blocks, 4, four);
        cpu::avx2Kernels()->dotRowsQ6_K(m.bytes.data(), a.data(), blocks, 4, avx2);
        for (int r = 0; r < 4; ++r) {
            QVERIFY2(std::fabs(four[r] - avx2[r]) <= 1e-5f * (std::fabs(avx2[r]) + 1.0f), qPrintable(QStringLiteral("%1 vs %2").arg(four[r]).arg(avx2[r])));
            for (int rows = 1; rows <= 4 - r; ++rows) {
                float got[4];
                k->dotRowsQ6_K(m.bytes.data(), a.data() + r * blocks, blocks, rows, got);
                QCOMPARE(got[0], four[r]);
            }
        }
        QCOMPARE(k->dotQ6_K(m.bytes.data(), a.data(), blocks), four[0]);
    }

    // The AVX2 sets' packed Q4_0 kernels (two blocks per step; an odd last block), as above.
    void avx2PackedKernels() {
        const auto& f = cpuFeatures();
        if (!cpu::avx2Kernels() || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        checkPacked(DType::Q4_0, cpu::avx2Kernels()->packedQ4_0, cpu::scalarKernels().dotQ4_0, {1, 2, 3, 4, 5, 7, 64});
        if (QTest::currentTestFailed()) return;
        if (f.avxVnni) checkPacked(DType::Q4_0, cpu::avx2AvxVnniKernels()->packedQ4_0, cpu::scalarKernels().dotQ4_0, {1, 2, 3, 4, 5, 7, 64});
        if (QTest::currentTestFailed() || !f.avx512f || !f.avx512bw || !f.avx512vl || !f.avx512vnni) return;
        checkPacked(DType::Q4_0, cpu::avx2VnniKernels()->packedQ4_0, cpu::scalarKernels().dotQ4_0, {1, 2, 3, 4, 5, 7, 64});
    }

    // The AVX-512 set's packed kernels (Q8_0, Q4_0, Q4_K, IQ4_NL, MXFP4): the scalar kernels' value within float
    // rounding (the integer sums are exact; the float sums go in another order), for block counts
    // that leave partial groups; and the same bits for any number of weight and activation rows,
    // so a prompt's logits equal one token at a time.
    void avx512PackedKernels() {
        const cpu::Kernels* k = cpu::avx512Kernels();
        const auto& f = cpuFeatures();
        if (!k || !f.avx2 || !f.avx512f || !f.avx512bw || !f.avx512vl || !f.avx512vnni || !f.avx512vbmi) QSKIP("this CPU has no AVX-512 VNNI and VBMI");
        const cpu::Kernels& scalar = cpu::scalarKernels();
        checkPacked(DType::Q8_0, k->packedQ8_0, scalar.dotQ8_0, {1, 2, 3, 4, 5, 7, 11, 64});
        if (QTest::currentTestFailed()) return;
        checkPacked(DType::Q4_0, k->packedQ4_0, scalar.dotQ4_0, {1, 2, 3, 4, 5, 7, 11, 64});
        if (QTest::currentTestFailed()) return;
        checkPacked(DType::Q4_K, k->packedQ4_K, scalar.dotQ4_K, {1, 2, 3, 8});
        if (QTest::currentTestFailed()) return;
        // the codebook formats
        checkPacked(DType::IQ4_NL, k->packedIQ4_NL, scalar.dotIQ4_NL, {1, 2, 3, 4, 5, 7, 11, 64});
        if (QTest::currentTestFailed()) return;
        checkPacked(DType::MXFP4, k->packedMXFP4, scalar.dotMXFP4, {1, 2, 3, 4, 5, 7, 11, 64});
        if (QTest::currentTestFailed()) return;
        // MXFP4 scales at the edges (exponents 0 and 1 give subnormal floats; 150 a large one),
        // one per block of a row of 8 blocks, built from the exponent's bits as the scalar kernel does
        const std::uint8_t exponents[8] = {0, 1, 2, 100, 127, 128, 150, 90};
        std::vector<std::uint8_t> row(8 * 17);
        std::mt19937 rng(5);
        for (int b = 0; b < 8; ++b) {
            row[static_cast<std::size_t>(17 * b)] = exponents[b];
            for (int i = 1; i < 17; ++i) row[static_cast<std::size_t>(17 * b + i)] = static_cast<std::uint8_t>(rng());
        }
        const auto a = randomActivations<cpu::BlockQ8>(8, 9);
        std::vector<std::uint8_t> storage(static_cast<std::size_t>(k->packedMXFP4.bytes(8) + 64));
        auto* packed = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) & ~std::uintptr_t{63});
        k->packedMXFP4.pack(a.data(), 8, packed);
        float got = 0.0f;
        k->packedMXFP4.dotRows(row.data(), 17 * 8, 1, packed, 8, 1, &got, 1);
        const float want = scalar.dotMXFP4(row.data(), a.data(), 8);
        QVERIFY2(std::isfinite(want) && std::fabs(got - want) <= 1e-5f * std::fabs(want), qPrintable(QStringLiteral("%1 vs %2").arg(got).arg(want)));
    }

    void avx2MatchesScalarKernels_data() {
        QTest::addColumn<int>("type");
        for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                        DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4})
            QTest::newRow(std::string(name(t)).c_str()) << static_cast<int>(t);
    }
    void avx2MatchesScalarKernels() {
        QFETCH(int, type);
        const cpu::Kernels* avx2 = cpu::avx2Kernels();
        const auto& f = cpuFeatures();
        if (!avx2 || !f.avx2 || !f.fma || !f.f16c) QSKIP("this CPU does not run the AVX2 kernels");
        const cpu::Kernels& scalar = cpu::scalarKernels();
        const DType t = static_cast<DType>(type);
        const bool kQuant = t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
        const int blocks = 7, n = blocks * (kQuant || t == DType::IQ4_XS ? 256 : 32);
        const Matrix m = randomMatrix(t, n, 1, 11);
        std::vector<float> x(static_cast<std::size_t>(n));
        std::mt19937 rng(5);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (auto& v : x) v = normal(rng);
        float fast = 0, slow = 0;
        if (kQuant) {
            std::vector<cpu::BlockQ8K> a(blocks);
            cpu::quantizeActivations(x.data(), n, a.data());
            const auto pick = [t](const cpu::Kernels& k) {
                switch (t) {
                    case DType::Q2_K: return k.dotQ2_K;
                    case DType::Q3_K: return k.dotQ3_K;
                    case DType::Q4_K: return k.dotQ4_K;
                    case DType::Q5_K: return k.dotQ5_K;
                    default: return k.dotQ6_K;
                }
            };
            fast = pick(*avx2)(m.bytes.data(), a.data(), blocks);
            slow = pick(scalar)(m.bytes.data(), a.data(), blocks);
        } else {
            std::vector<cpu::BlockQ8> a(static_cast<std::size_t>(n / 32));
            cpu::quantizeActivations(x.data(), n, a.data());
            const auto pick = [t](const cpu::Kernels& k) {
                switch (t) {
                    case DType::IQ4_NL: return k.dotIQ4_NL;
                    case DType::IQ4_XS: return k.dotIQ4_XS;
                    case DType::MXFP4: return k.dotMXFP4;
                    case DType::Q8_0: return k.dotQ8_0;
                    case DType::Q4_0: return k.dotQ4_0;
                    case DType::Q4_1: return k.dotQ4_1;
                    case DType::Q5_0: return k.dotQ5_0;
                    default: return k.dotQ5_1;
                }
            };
            fast = pick(*avx2)(m.bytes.data(), a.data(), n / 32);
            slow = pick(scalar)(m.bytes.data(), a.data(), n / 32);
        }
        QVERIFY2(std::fabs(fast - slow) <= 1e-5f * (std::fabs(slow) + 1.0f), qPrintable(QStringLiteral("%1 vs %2").arg(fast).arg(slow)));
    }

    // Prefill (several tokens per product, multi-row kernels for Q8_0/Q4_0/Q4_K/Q6_K) equals one
    // product per token on the same backend: the same integer sums, so within float rounding.
    void matmulMatchesMatvec_data() {
        QTest::addColumn<int>("type");
        for (DType t : kAllDTypes) QTest::newRow(std::string(name(t)).c_str()) << static_cast<int>(t);
    }
    void matmulMatchesMatvec() {
        QFETCH(int, type);
        const DType t = static_cast<DType>(type);
        const std::int64_t cols = traits(t).blockSize == 1 ? 300 : 4 * 256, rows = 19, n = 7;
        const Matrix m = randomMatrix(t, cols, rows, 21);
        std::mt19937 rng(22);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<std::size_t>(n * cols));
        for (auto& v : x) v = normal(rng);
        auto fast = makeCpuBackend({.threads = 2, .simd = true, .minParallelWork = 0});
        std::vector<float> batch(static_cast<std::size_t>(n * rows)), single(static_cast<std::size_t>(rows));
        fast->matmul(m.tensor, x.data(), n, batch.data());
        for (std::int64_t i = 0; i < n; ++i) {
            fast->matvec(m.tensor, x.data() + i * cols, single.data());
            for (std::int64_t r = 0; r < rows; ++r) {
                const float a = batch[static_cast<std::size_t>(i * rows + r)], b = single[static_cast<std::size_t>(r)];
                QVERIFY2(std::fabs(a - b) <= 1e-5f * (std::fabs(b) + 1.0f), qPrintable(QStringLiteral("token %1 row %2: %3 vs %4").arg(i).arg(r).arg(a).arg(b)));
            }
        }
    }

    // Several products of the same activations (q/k/v, gate/up) in one pass give the bits of
    // each product on its own, for a token and for a prompt.
    void matmulsMatchSeparateProducts_data() { matmulMatchesMatvec_data(); }
    void matmulsMatchSeparateProducts() {
        QFETCH(int, type);
        const DType t = static_cast<DType>(type);
        const std::int64_t cols = traits(t).blockSize == 1 ? 300 : 4 * 256;
        const Matrix a = randomMatrix(t, cols, 37, 31), b = randomMatrix(t, cols, 5, 32), c = randomMatrix(t, cols, 8, 33);
        std::mt19937 rng(34);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<std::size_t>(3 * cols));
        for (auto& v : x) v = normal(rng);
        auto backend = makeCpuBackend({.threads = 2, .simd = true, .minParallelWork = 0});
        for (std::int64_t n : {1, 3}) {
            std::vector<float> ya(static_cast<std::size_t>(n * 37)), yb(static_cast<std::size_t>(n * 5)), yc(static_cast<std::size_t>(n * 8));
            const Backend::Product products[] = {{&a.tensor, ya.data()}, {&b.tensor, yb.data()}, {&c.tensor, yc.data()}};
            backend->matmuls(products, x.data(), n);
            for (const Backend::Product& p : products) {
                std::vector<float> alone(static_cast<std::size_t>(n * p.w->rows()));
                backend->matmul(*p.w, x.data(), n, alone.data());
                QVERIFY2(std::memcmp(alone.data(), p.y, alone.size() * sizeof(float)) == 0, qPrintable(QStringLiteral("%1 rows, %2 tokens").arg(p.w->rows()).arg(n)));
            }
        }
    }

    // Attention over a KV cache: the SIMD path (query heads of a KV head together, exp on 8
    // lanes) against the scalar reference, |fast - reference| <= 1e-5 + 1e-4 |reference|; and a
    // prompt's rows equal the same rows attended one at a time, bit for bit. Variants: a sliding
    // window with another query scale (Gemma), soft-capped scores (Gemma 2), both; a windowed
    // row equals plain attention over the cache from the window's first position on.
    void attentionMatchesReference_data() {
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<int>("headDim");
        QTest::addColumn<bool>("f16");
        QTest::addColumn<int>("variant");
        for (bool f16 : {false, true}) {
            const char* kind = f16 ? "F16" : "F32";
            QTest::newRow(qPrintable(QStringLiteral("32/4x64 %1").arg(kind))) << 32 << 4 << 64 << f16 << 0;
            QTest::newRow(qPrintable(QStringLiteral("6/2x80 %1").arg(kind))) << 6 << 2 << 80 << f16 << 0;
            QTest::newRow(qPrintable(QStringLiteral("8/1x128 %1").arg(kind))) << 8 << 1 << 128 << f16 << 0;
            QTest::newRow(qPrintable(QStringLiteral("4/4x24 %1").arg(kind))) << 4 << 4 << 24 << f16 << 0;
            QTest::newRow(qPrintable(QStringLiteral("2/1x7 %1").arg(kind))) << 2 << 1 << 7 << f16 << 0;
            QTest::newRow(qPrintable(QStringLiteral("8/2x64 window %1").arg(kind))) << 8 << 2 << 64 << f16 << 1;
            QTest::newRow(qPrintable(QStringLiteral("8/2x64 softcap %1").arg(kind))) << 8 << 2 << 64 << f16 << 2;
            QTest::newRow(qPrintable(QStringLiteral("6/2x80 window softcap %1").arg(kind))) << 6 << 2 << 80 << f16 << 3;
            QTest::newRow(qPrintable(QStringLiteral("8/2x64 sinks %1").arg(kind))) << 8 << 2 << 64 << f16 << 4;
            QTest::newRow(qPrintable(QStringLiteral("6/3x64 window sinks %1").arg(kind))) << 6 << 3 << 64 << f16 << 5;
        }
    }
    void attentionMatchesReference() {
        QFETCH(int, heads);
        QFETCH(int, kvHeads);
        QFETCH(int, headDim);
        QFETCH(bool, f16);
        QFETCH(int, variant);
        const std::int64_t positions = 41, kvDim = std::int64_t{kvHeads} * headDim, rows = 5;
        std::mt19937 rng(static_cast<unsigned>(heads * 131 + headDim));
        std::normal_distribution<float> normal(0.0f, 1.5f);
        std::vector<float> keys(static_cast<std::size_t>(positions * kvDim)), values(keys.size());
        for (auto& v : keys) v = normal(rng);
        for (auto& v : values) v = normal(rng);
        std::vector<std::uint16_t> keys16(keys.size()), values16(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            keys16[i] = floatToHalf(keys[i]);
            values16[i] = floatToHalf(values[i]);
        }
        const KvLayer layer = f16 ? KvLayer{DType::F16, keys16.data(), values16.data()} : KvLayer{DType::F32, keys.data(), values.data()};
        std::vector<float> q(static_cast<std::size_t>(rows * heads * headDim));
        for (auto& v : q) v = normal(rng);
        AttentionSpec spec{heads, kvHeads, headDim};
        if (variant & 1) spec.window = 9, spec.scale = 0.05f;
        if (variant & 2) spec.softcap = 1.5f;
        // gpt-oss's sinks: one logit per head, about as large as the scores
        std::vector<float> sinkValues(static_cast<std::size_t>(heads));
        for (auto& v : sinkValues) v = 2.0f * normal(rng);
        Tensor sinks{"sinks", DType::F32, {heads, 1, 1, 1}, reinterpret_cast<const std::uint8_t*>(sinkValues.data())};
        if (variant & 4) spec.sinks = &sinks;
        auto reference = makeCpuBackend({.threads = 1, .simd = false});
        auto fast = makeCpuBackend({.threads = 2, .simd = true, .minParallelWork = 0});
        const std::int64_t pos0 = positions - rows;  // the rows see pos0 + 1 .. positions keys
        std::vector<float> want(q.size()), got(q.size()), single(static_cast<std::size_t>(heads * headDim));
        reference->attention(q.data(), layer, pos0, rows, spec, want.data());
        if (spec.sinks && !f16) {
            // A sink takes its share of the softmax and gives no value: the output is plain
            // attention's times Z / (Z + e^sink), Z the sum of e^score over the visible keys.
            AttentionSpec plain = spec;
            plain.sinks = nullptr;
            std::vector<float> without(q.size());
            reference->attention(q.data(), layer, pos0, rows, plain, without.data());
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t h = 0; h < heads; ++h) {
                    double z = 0.0;
                    const float* qh = q.data() + (r * heads + h) * headDim;
                    for (std::int64_t t = spec.firstVisible(pos0 + r); t <= pos0 + r; ++t) {
                        double dot = 0.0;
                        for (std::int64_t d = 0; d < headDim; ++d) dot += double{qh[d]} * keys[static_cast<std::size_t>(t * kvDim + h / (heads / kvHeads) * headDim + d)];
                        z += std::exp(dot * spec.queryScale());
                    }
                    const double share = z / (z + std::exp(double{sinkValues[static_cast<std::size_t>(h)]}));
                    for (std::int64_t d = 0; d < headDim; ++d) {
                        const std::size_t i = static_cast<std::size_t>((r * heads + h) * headDim + d);
                        QVERIFY2(std::fabs(want[i] - without[i] * share) <= 1e-5 + 1e-4 * std::fabs(want[i]),
                                 qPrintable(QStringLiteral("row %1 head %2: %3 vs %4").arg(r).arg(h).arg(want[i]).arg(without[i] * share)));
                    }
                }
        }
        if (spec.window > 0) {
            // Row r sees the window's positions only: plain causal attention over a cache that
            // starts at its first one.
            AttentionSpec unwindowed = spec;
            unwindowed.window = 0;
            const std::int64_t elem = f16 ? 2 : 4;
            for (std::int64_t r = 0; r < rows; ++r) {
                const std::int64_t first = spec.firstVisible(pos0 + r);
                QCOMPARE(first, pos0 + r - 8);
                const KvLayer shifted{layer.dtype, static_cast<std::uint8_t*>(layer.keys) + first * kvDim * elem,
                                      static_cast<std::uint8_t*>(layer.values) + first * kvDim * elem};
                reference->attention(q.data() + r * heads * headDim, shifted, pos0 + r - first, 1, unwindowed, single.data());
                for (std::int64_t i = 0; i < heads * headDim; ++i)
                    QCOMPARE(single[static_cast<std::size_t>(i)], want[static_cast<std::size_t>(r * heads * headDim + i)]);
            }
        }
        fast->attention(q.data(), layer, pos0, rows, spec, got.data());
        for (std::size_t i = 0; i < want.size(); ++i)
            QVERIFY2(std::fabs(got[i] - want[i]) <= 1e-5f + 1e-4f * std::fabs(want[i]), qPrintable(QStringLiteral("%1: %2 vs %3").arg(i).arg(got[i]).arg(want[i])));
        for (std::int64_t r = 0; r < rows; ++r) {
            fast->attention(q.data() + r * heads * headDim, layer, pos0 + r, 1, spec, single.data());
            for (std::int64_t i = 0; i < heads * headDim; ++i) QCOMPARE(single[static_cast<std::size_t>(i)], got[static_cast<std::size_t>(r * heads * headDim + i)]);
        }
        // A session's cache (capacity set: the CPU backend keeps each KV head's rows together),
        // filled through storeKv in two pieces: the same bits as the position-major cache.
        const std::int64_t capacity = positions + 7, elem = f16 ? 2 : 4;
        std::vector<std::uint8_t> headKeys(static_cast<std::size_t>(capacity * kvDim * elem)), headValues(headKeys.size());
        const KvLayer headMajor{f16 ? DType::F16 : DType::F32, headKeys.data(), headValues.data(), capacity, headDim};
        fast->storeKv(headMajor, 0, 30, kvDim, keys.data(), values.data());
        fast->storeKv(headMajor, 30, positions - 30, kvDim, keys.data() + 30 * kvDim, values.data() + 30 * kvDim);
        if (f16) {
            const auto* stored = reinterpret_cast<const std::uint16_t*>(headKeys.data());
            const std::int64_t h = kvHeads - 1;  // the last head's key 3, value 2
            QCOMPARE(stored[(h * capacity + 3) * headDim + 2], keys16[static_cast<std::size_t>(3 * kvDim + h * headDim + 2)]);
        }
        std::vector<float> fromHeads(q.size());
        fast->attention(q.data(), headMajor, pos0, rows, spec, fromHeads.data());
        for (std::size_t i = 0; i < got.size(); ++i) QCOMPARE(fromHeads[i], got[i]);
        std::vector<float> referenceHeads(q.size());
        reference->attention(q.data(), headMajor, pos0, rows, spec, referenceHeads.data());
        for (std::size_t i = 0; i < want.size(); ++i) QCOMPARE(referenceHeads[i], want[i]);
        // Unmasked self-attention of all 41 rows (a ViT's: 16 rows per task, the last task short).
        if (f16 || variant != 0) return;
        std::vector<float> queries(static_cast<std::size_t>(positions * heads * headDim));
        for (auto& v : queries) v = normal(rng);
        std::vector<float> selfWant(queries.size()), selfGot(queries.size());
        reference->selfAttention(queries.data(), keys.data(), values.data(), positions, spec, selfWant.data());
        fast->selfAttention(queries.data(), keys.data(), values.data(), positions, spec, selfGot.data());
        for (std::size_t i = 0; i < selfWant.size(); ++i)
            QVERIFY2(std::fabs(selfGot[i] - selfWant[i]) <= 1e-5f + 1e-4f * std::fabs(selfWant[i]),
                     qPrintable(QStringLiteral("self %1: %2 vs %3").arg(i).arg(selfGot[i]).arg(selfWant[i])));
    }

    // A Q8_0 cache (--cache-type q8_0): storeKv quantizes each 32 values as Q8_0 does, the
    // same bytes and scales from the scalar and SIMD backends, head-major (a session's) or
    // position-major; the SIMD attention matches the scalar reference over it
    // (|diff| <= 1e-5 + 1e-4 |reference|) and both layouts give the same bits; and against
    // attention over the unquantized F32 keys and values it is within 0.06 (values ~ N(0, 1.5),
    // each off by up to 1/254 of its block's largest, ~0.013; measured up to 0.043).
    void q8CacheAttention_data() {
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<int>("headDim");
        QTest::addColumn<int>("variant");
        QTest::newRow("32/4x64") << 32 << 4 << 64 << 0;
        QTest::newRow("6/2x96") << 6 << 2 << 96 << 0;
        QTest::newRow("8/1x128") << 8 << 1 << 128 << 0;
        QTest::newRow("4/4x32 window") << 4 << 4 << 32 << 1;
        QTest::newRow("8/2x256 window softcap") << 8 << 2 << 256 << 3;
    }
    void q8CacheAttention() {
        QFETCH(int, heads);
        QFETCH(int, kvHeads);
        QFETCH(int, headDim);
        QFETCH(int, variant);
        const std::int64_t positions = 45, kvDim = std::int64_t{kvHeads} * headDim, rows = 6, capacity = positions + 3;
        std::mt19937 rng(static_cast<unsigned>(heads * 7 + headDim));
        std::normal_distribution<float> normal(0.0f, 1.5f);
        std::vector<float> keys(static_cast<std::size_t>(positions * kvDim)), values(keys.size()), q(static_cast<std::size_t>(rows * heads * headDim));
        for (auto* v : {&keys, &values, &q})
            for (auto& x : *v) x = normal(rng);
        AttentionSpec spec{heads, kvHeads, headDim};
        if (variant & 1) spec.window = 11, spec.scale = 0.07f;
        if (variant & 2) spec.softcap = 2.0f;
        auto reference = makeCpuBackend({.threads = 1, .simd = false});
        auto fast = makeCpuBackend({.threads = 2, .simd = true, .minParallelWork = 0});
        struct Cache {
            std::vector<std::int8_t> k, v;
            std::vector<float> ks, vs;
            KvLayer layer;
        };
        const auto makeCache = [&](std::int64_t cap) {
            auto c = std::make_unique<Cache>();
            const std::int64_t n = std::max(cap, positions) * kvDim;
            c->k.resize(static_cast<std::size_t>(n));
            c->v.resize(c->k.size());
            c->ks.resize(static_cast<std::size_t>(n / 32));
            c->vs.resize(c->ks.size());
            c->layer = KvLayer{DType::Q8_0, c->k.data(), c->v.data(), cap, cap > 0 ? headDim : 0, c->ks.data(), c->vs.data()};
            return c;
        };
        auto byReference = makeCache(capacity), byFast = makeCache(capacity), rowMajor = makeCache(0);
        for (auto [backend, cache] : {std::pair{reference.get(), byReference.get()}, std::pair{fast.get(), byFast.get()}, std::pair{fast.get(), rowMajor.get()}}) {
            backend->storeKv(cache->layer, 0, 20, kvDim, keys.data(), values.data());
            backend->storeKv(cache->layer, 20, positions - 20, kvDim, keys.data() + 20 * kvDim, values.data() + 20 * kvDim);
        }
        QVERIFY(byReference->k == byFast->k && byReference->v == byFast->v && byReference->ks == byFast->ks && byReference->vs == byFast->vs);
        // Position 5 of the last KV head, its first block: the largest |key| is 127 times its scale.
        const std::int64_t h = kvHeads - 1;
        const float* block = keys.data() + 5 * kvDim + h * headDim;
        float largest = 0.0f;
        for (int i = 0; i < 32; ++i) largest = std::max(largest, std::fabs(block[i]));
        QCOMPARE(byFast->ks[static_cast<std::size_t>((h * capacity + 5) * headDim / 32)], largest / 127.0f);
        QCOMPARE(rowMajor->ks[static_cast<std::size_t>((5 * kvDim + h * headDim) / 32)], largest / 127.0f);

        const std::int64_t pos0 = positions - rows;
        std::vector<float> want(q.size()), got(q.size()), rowsGot(q.size()), exact(q.size());
        reference->attention(q.data(), byReference->layer, pos0, rows, spec, want.data());
        fast->attention(q.data(), byFast->layer, pos0, rows, spec, got.data());
        fast->attention(q.data(), rowMajor->layer, pos0, rows, spec, rowsGot.data());
        reference->attention(q.data(), KvLayer{DType::F32, keys.data(), values.data()}, pos0, rows, spec, exact.data());
        float worst = 0.0f;
        for (std::size_t i = 0; i < want.size(); ++i) {
            QVERIFY2(std::fabs(got[i] - want[i]) <= 1e-5f + 1e-4f * std::fabs(want[i]), qPrintable(QStringLiteral("%1: %2 vs %3").arg(i).arg(got[i]).arg(want[i])));
            QCOMPARE(rowsGot[i], got[i]);
            worst = std::max(worst, std::fabs(want[i] - exact[i]));
        }
        qInfo("Q8_0 cache against F32: max |diff| %.5f", static_cast<double>(worst));
        QVERIFY(worst <= 0.06f);
    }

    // A call that throws, on a worker or on the caller's thread: parallelFor rethrows the first
    // exception only once every call under way has returned (none runs on after it, on a
    // function that is gone), and the pool works on.
    void threadPoolPassesExceptionsOn() {
        ThreadPool pool(3);
        for (int round = 0; round < 50; ++round) {
            std::atomic<int> running{0};
            try {
                pool.parallelFor(1000, [&](std::int64_t b, std::int64_t e) {
                    running.fetch_add(1);
                    std::this_thread::sleep_for(std::chrono::microseconds(20));
                    running.fetch_sub(1);
                    if (b <= 500 + round && 500 + round < e) throw std::runtime_error("range " + std::to_string(b));
                });
                QFAIL("no exception");
            } catch (const std::runtime_error& e) {
                QVERIFY(QString::fromUtf8(e.what()).startsWith("range "));
            }
            QCOMPARE(running.load(), 0);
            std::atomic<std::int64_t> sum{0};
            pool.parallelFor(100, [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t i = b; i < e; ++i) sum.fetch_add(i);
            });
            QCOMPARE(sum.load(), std::int64_t{4950});
        }
    }

    // One pool, several callers (the app's LLM and vision backends share one): each op covers its
    // own range exactly once and no two ops' calls overlap; two backends on one pool agree with
    // a backend of its own.
    void threadPoolTakesCallersInTurn() {
        auto pool = std::make_shared<ThreadPool>(3);
        std::atomic<int> inside[3] = {0, 0, 0};  // each caller's calls under way (callers 1 and 2)
        std::atomic<bool> overlapped{false};
        const auto caller = [&](int seed, std::int64_t& total) {
            for (int round = 0; round < 200; ++round) {
                const std::int64_t n = 50 + (seed * 37 + round * 11) % 400;
                std::atomic<std::int64_t> sum{0};
                pool->parallelFor(n, [&](std::int64_t b, std::int64_t e) {
                    // The op's calls may run together; another caller's may not.
                    inside[seed].fetch_add(1);
                    if (inside[3 - seed].load() > 0) overlapped = true;
                    for (std::int64_t i = b; i < e; ++i) sum.fetch_add(i + seed);
                    inside[seed].fetch_sub(1);
                });
                total += sum.load() - (n * (n - 1) / 2 + n * seed);  // zero when every index came once
            }
        };
        std::int64_t a = 0, b = 0;
        std::thread other([&] { caller(1, b); });
        caller(2, a);
        other.join();
        QCOMPARE(a, std::int64_t{0});
        QCOMPARE(b, std::int64_t{0});
        QVERIFY(!overlapped.load());

        const Matrix m = randomMatrix(DType::Q8_0, 256, 40, 5);
        std::vector<float> x(static_cast<std::size_t>(16 * 256));
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.37f);
        auto shared1 = makeCpuBackend({.threads = 3, .pool = pool, .minParallelWork = 0});
        auto shared2 = makeCpuBackend({.threads = 3, .pool = pool, .minParallelWork = 0});
        auto own = makeCpuBackend({.threads = 3, .minParallelWork = 0});
        std::vector<float> want(16 * 40), got1(16 * 40), got2(16 * 40);
        own->matmul(m.tensor, x.data(), 16, want.data());
        std::thread t([&] {
            for (int i = 0; i < 20; ++i) shared1->matmul(m.tensor, x.data(), 16, got1.data());
        });
        for (int i = 0; i < 20; ++i) shared2->matmul(m.tensor, x.data(), 16, got2.data());
        t.join();
        QCOMPARE(got1, want);
        QCOMPARE(got2, want);
    }

    void threadPoolCoversEveryIndexOnce() {
        ThreadPool pool(3);
        for (std::int64_t n : {1, 2, 3, 7, 1000, 100003}) {
            std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
            for (int round = 0; round < 20; ++round)
                pool.parallelFor(n, [&](std::int64_t b, std::int64_t e) {
                    for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
                });
            for (auto& h : hits) QCOMPARE(h.load(), 20);
        }
    }

    void otherOpsMatchReference() {
        auto reference = makeCpuBackend({.threads = 1, .simd = false});
        auto fast = makeCpuBackend({.minParallelWork = 0});
        std::vector<float> a{1, -2, 3, 0.5f, 7, -1, 2, 4}, b = a;
        const RopeSpec neox{.nHeads = 2, .headDim = 4, .nRot = 4, .freqBase = 10000.0f, .style = RopeStyle::NeoX};
        reference->rope(a.data(), 1, 5, neox);
        fast->rope(b.data(), 1, 5, neox);
        QCOMPARE(a, b);
        // RoPE at position 0 is the identity; rotations keep each pair's length.
        std::vector<float> c{1, 2, 3, 4}, d = c;
        const RopeSpec interleaved{.nHeads = 1, .headDim = 4, .nRot = 4, .freqBase = 10000.0f, .style = RopeStyle::Interleaved};
        reference->rope(c.data(), 1, 0, interleaved);
        QCOMPARE(c, d);
        reference->rope(c.data(), 1, 17, interleaved);
        QVERIFY(std::fabs(std::hypot(c[0], c[1]) - std::hypot(1.0f, 2.0f)) < 1e-5f);
        // SiLU-gate on 8 lanes (its own exp) against std::exp: within 2e-6 relative, including
        // gates far out where exp under- or overflows.
        std::vector<float> gate(1003), up(1003);
        std::mt19937 rng(12);
        std::normal_distribution<float> normal(0.0f, 4.0f);
        for (auto& v : gate) v = normal(rng);
        for (auto& v : up) v = normal(rng);
        gate[5] = 95.0f, gate[6] = -95.0f, gate[7] = 0.0f, gate[1001] = -30.0f;
        std::vector<float> slow = gate, quick = gate;
        reference->siluMul(slow.data(), up.data(), 1003);
        fast->siluMul(quick.data(), up.data(), 1003);
        for (std::size_t i = 0; i < slow.size(); ++i)
            QVERIFY2(std::fabs(quick[i] - slow[i]) <= 2e-6f * std::fabs(slow[i]) + 1e-30f, qPrintable(QStringLiteral("%1: %2 vs %3").arg(i).arg(quick[i]).arg(slow[i])));
    }

    // Gated DeltaNet's recurrence: every kernel set's token-by-token and chunked kernels, and the
    // fast backend (threads, chunks from 16 rows), against a double-precision recurrence written
    // here from the spec (DeltaNetSpec), on a few head shapes (value heads sharing key heads in
    // turn), prompts shorter and longer than a chunk, and a call continuing another's state.
    // Tolerance: 1e-6 * (1 + |want|) for the outputs and the state (measured up to 5e-8 token by
    // token and 2e-7 in chunks).
    void deltaNetMatchesReference_data() {
        QTest::addColumn<int>("nK");
        QTest::addColumn<int>("nV");
        QTest::addColumn<int>("kDim");
        QTest::addColumn<int>("vDim");
        QTest::addColumn<int>("rows");
        for (const auto& [nK, nV, kd, vd] : {std::array{2, 4, 16, 16}, std::array{1, 3, 32, 48}, std::array{2, 4, 128, 128}, std::array{1, 1, 24, 8}})
            for (int rows : {1, 7, 16, 64, 150})
                QTest::newRow(qPrintable(QStringLiteral("%1x%2 heads %3x%4, %5 rows").arg(nK).arg(nV).arg(kd).arg(vd).arg(rows))) << nK << nV << kd << vd << rows;
    }
    void deltaNetMatchesReference() {
        QFETCH(int, nK);
        QFETCH(int, nV);
        QFETCH(int, kDim);
        QFETCH(int, vDim);
        QFETCH(int, rows);
        std::mt19937 rng(static_cast<unsigned>(nK * 1000 + kDim + rows));
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::uniform_real_distribution<float> uniform(0.1f, 2.0f);
        std::vector<float> aValues(static_cast<std::size_t>(nV)), dtValues(static_cast<std::size_t>(nV));
        for (auto& v : aValues) v = -uniform(rng);
        for (auto& v : dtValues) v = 0.5f * normal(rng);
        const auto vectorTensor = [](std::vector<float>& values) {
            Tensor t;
            t.name = "vector";
            t.dtype = DType::F32;
            t.ne = {static_cast<std::int64_t>(values.size()), 1, 1, 1};
            t.data = reinterpret_cast<const std::uint8_t*>(values.data());
            return t;
        };
        const Tensor a = vectorTensor(aValues), dt = vectorTensor(dtValues);
        const DeltaNetSpec spec{nK, nV, kDim, vDim, &a, &dt, 1e-6f};
        const std::int64_t width = spec.inputWidth();
        std::vector<float> qkv(static_cast<std::size_t>(rows * width)), alpha(static_cast<std::size_t>(rows * nV)), beta(alpha.size());
        for (auto& v : qkv) v = normal(rng);
        for (auto& v : alpha) v = normal(rng);
        for (auto& v : beta) v = normal(rng);
        std::vector<float> state0(static_cast<std::size_t>(spec.stateFloats()));
        for (auto& v : state0) v = 0.3f * normal(rng);

        // The spec in double precision.
        std::vector<double> S(state0.begin(), state0.end()), want(static_cast<std::size_t>(rows * nV * vDim));
        for (int t = 0; t < rows; ++t)
            for (int h = 0; h < nV; ++h) {
                const float* row = qkv.data() + t * width;
                const float* qh = row + spec.kHead(h) * kDim;
                const float* kh = row + (nK + spec.kHead(h)) * kDim;
                const float* vh = row + 2 * nK * kDim + h * vDim;
                double qq = 0, kk = 0;
                for (int i = 0; i < kDim; ++i) qq += double(qh[i]) * qh[i], kk += double(kh[i]) * kh[i];
                const double qs = 1.0 / std::sqrt(qq + 1e-6) / std::sqrt(double(kDim)), ks = 1.0 / std::sqrt(kk + 1e-6);
                const double x = double(alpha[static_cast<std::size_t>(t * nV + h)]) + dtValues[static_cast<std::size_t>(h)];
                const double decay = std::exp(aValues[static_cast<std::size_t>(h)] * std::log1p(std::exp(x)));
                const double b = 1.0 / (1.0 + std::exp(-double(beta[static_cast<std::size_t>(t * nV + h)])));
                double* s = S.data() + static_cast<std::size_t>(h) * kDim * vDim;
                for (int j = 0; j < vDim; ++j) {
                    double kv = 0;
                    for (int i = 0; i < kDim; ++i) kv += (s[i * vDim + j] *= decay) * kh[i] * ks;
                    const double delta = (vh[j] - kv) * b;
                    double o = 0;
                    for (int i = 0; i < kDim; ++i) o += (s[i * vDim + j] += kh[i] * ks * delta) * qh[i] * qs;
                    want[static_cast<std::size_t>((t * nV + h) * vDim + j)] = o;
                }
            }
        const auto close = [&](const std::vector<float>& got, const auto& expected, const QString& what) {
            QCOMPARE(got.size(), expected.size());
            for (std::size_t i = 0; i < got.size(); ++i)
                if (!(std::fabs(got[i] - expected[i]) <= 1e-6 * (1.0 + std::fabs(expected[i]))))
                    QFAIL(qPrintable(QStringLiteral("%1, value %2: %3 vs %4").arg(what).arg(i).arg(got[i]).arg(double(expected[i]))));
        };
        // Each backend, in one call and in two (the second continuing the first's state).
        auto reference = makeCpuBackend({.threads = 1, .simd = false});
        auto fast = makeCpuBackend({.threads = 2, .minParallelWork = 0});
        for (Backend* be : {reference.get(), fast.get()}) {
            const QString name = QString::fromUtf8(be->name().data(), static_cast<int>(be->name().size()));
            std::vector<float> state = state0, out(want.size());
            be->deltaNet(qkv.data(), alpha.data(), beta.data(), rows, spec, state.data(), out.data());
            close(out, want, name);
            close(state, S, name + " state");
            const int first = rows / 3;
            state = state0;
            std::fill(out.begin(), out.end(), 0.0f);
            if (first > 0) be->deltaNet(qkv.data(), alpha.data(), beta.data(), first, spec, state.data(), out.data());
            be->deltaNet(qkv.data() + first * width, alpha.data() + first * nV, beta.data() + first * nV, rows - first, spec, state.data(),
                         out.data() + first * nV * vDim);
            close(out, want, name + " in two calls");
        }
        // Every kernel set's two kernels on prepared heads (queries and keys normalised here).
        if (kDim % 16 != 0 || vDim % 16 != 0) return;
        std::vector<float> qk(static_cast<std::size_t>(rows * 2 * nK * kDim)), gb(static_cast<std::size_t>(rows * 2 * nV));
        for (int t = 0; t < rows; ++t) {
            for (int i = 0; i < 2 * nK; ++i) {
                const float* in = qkv.data() + t * width + i * kDim;
                double sum = 0;
                for (int d = 0; d < kDim; ++d) sum += double(in[d]) * in[d];
                const double s = (i < nK ? 1.0 / std::sqrt(double(kDim)) : 1.0) / std::sqrt(sum + 1e-6);
                for (int d = 0; d < kDim; ++d) qk[static_cast<std::size_t>((t * 2 * nK + i) * kDim + d)] = static_cast<float>(in[d] * s);
            }
            for (int h = 0; h < nV; ++h) {
                const double x = double(alpha[static_cast<std::size_t>(t * nV + h)]) + dtValues[static_cast<std::size_t>(h)];
                gb[static_cast<std::size_t>(t * 2 * nV + h)] = static_cast<float>(aValues[static_cast<std::size_t>(h)] * std::log1p(std::exp(x)));
                gb[static_cast<std::size_t>(t * 2 * nV + nV + h)] = static_cast<float>(1.0 / (1.0 + std::exp(-double(beta[static_cast<std::size_t>(t * nV + h)]))));
            }
        }
        for (const char* set : {"avx2", "avx-512"}) {
            const cpu::Kernels* k = cpu::runnableKernels(set);
            if (!k) continue;
            QVERIFY(k->deltaNetRecurrent && k->deltaNetChunked);
            for (auto kernel : {k->deltaNetRecurrent, k->deltaNetChunked}) {
                std::vector<float> state = state0, out(want.size());
                for (int h = 0; h < nV; ++h) {
                    const std::int64_t kh = spec.kHead(h);
                    kernel({qk.data() + kh * kDim, qk.data() + (nK + kh) * kDim, 2 * nK * kDim, qkv.data() + 2 * nK * kDim + h * vDim, width,
                            gb.data() + h, gb.data() + nV + h, 2 * nV, out.data() + h * vDim, nV * vDim,
                            state.data() + static_cast<std::size_t>(h) * kDim * vDim, rows, kDim, vDim});
                }
                const QString what = QStringLiteral("%1 %2").arg(QLatin1String(set), kernel == k->deltaNetChunked ? "chunked" : "token by token");
                close(out, want, what);
                close(state, S, what + " state");
            }
        }
    }

    // The short convolution against its definition, with the state carried between calls; the
    // gated attention's helpers.
    void shortConvAndGates() {
        const std::int64_t channels = 37, taps = 4, rows = 9;
        std::mt19937 rng(5);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> w(static_cast<std::size_t>(channels * taps)), x(static_cast<std::size_t>(rows * channels));
        for (auto& v : w) v = normal(rng);
        for (auto& v : x) v = normal(rng);
        Tensor weight;
        weight.name = "conv";
        weight.dtype = DType::F32;
        weight.ne = {taps, channels, 1, 1};
        weight.data = reinterpret_cast<const std::uint8_t*>(w.data());
        std::vector<float> want(x.size());
        for (std::int64_t t = 0; t < rows; ++t)
            for (std::int64_t c = 0; c < channels; ++c) {
                double sum = 0;
                for (std::int64_t j = 0; j < taps; ++j) {
                    const std::int64_t r = t - (taps - 1) + j;
                    if (r >= 0) sum += double(w[static_cast<std::size_t>(c * taps + j)]) * x[static_cast<std::size_t>(r * channels + c)];
                }
                want[static_cast<std::size_t>(t * channels + c)] = static_cast<float>(sum / (1.0 + std::exp(-sum)));
            }
        for (bool simd : {false, true}) {
            auto be = makeCpuBackend({.threads = 1, .simd = simd});
            for (std::int64_t split : {rows, std::int64_t{1}, std::int64_t{2}}) {  // all at once, one by one, in pairs
                std::vector<float> state(static_cast<std::size_t>((taps - 1) * channels)), out(x.size());
                for (std::int64_t t = 0; t < rows; t += split) {
                    const std::int64_t n = std::min(split, rows - t);
                    be->shortConv(x.data() + t * channels, n, channels, weight, state.data(), out.data() + t * channels);
                }
                for (std::size_t i = 0; i < out.size(); ++i) QVERIFY2(std::fabs(out[i] - want[i]) <= 1e-5f * (1.0f + std::fabs(want[i])), qPrintable(QString::number(i)));
                // The state holds the last taps - 1 input rows.
                for (std::int64_t i = 0; i < (taps - 1) * channels; ++i) QCOMPARE(state[static_cast<std::size_t>(i)], x[static_cast<std::size_t>((rows - taps + 1) * channels + i)]);
            }
            std::vector<float> src{1, 2, 3, 4, 5, 6, 7, 8}, dst(4, 0.0f);
            be->copyRows(src.data() + 1, 4, dst.data(), 2, 2, 2);
            QCOMPARE(dst, (std::vector<float>{2, 3, 6, 7}));
            std::vector<float> y{2.0f, -1.0f}, gate{0.0f, 100.0f};
            be->sigmoidMul(y.data(), gate.data(), 2);
            QCOMPARE(y, (std::vector<float>{1.0f, -1.0f}));
        }
    }

    // The backend keeps one position's rotations for the next call: a call with another base,
    // rotated width or frequency factors (even new values at the same address) at that position
    // must not reuse them. Each result equals a fresh backend's.
    void ropeTableFollowsTheSpec() {
        auto kept = makeCpuBackend({.threads = 1});
        std::vector<float> factors{1.0f, 4.0f, 8.0f, 1.0f};
        Tensor factorTensor;
        factorTensor.dtype = DType::F32;
        factorTensor.ne = {4, 1, 1, 1};
        factorTensor.data = reinterpret_cast<const std::uint8_t*>(factors.data());
        const std::vector<float> x{1, -2, 3, 0.5f, 7, -1, 2, 4, 0.25f, 9, -3, 5, 6, -7, 1.5f, 2};
        const auto check = [&](const RopeSpec& spec, const char* what) {
            std::vector<float> a = x, b = x;
            kept->rope(a.data(), 1, 11, spec);
            makeCpuBackend({.threads = 1})->rope(b.data(), 1, 11, spec);
            QVERIFY2(a == b, what);
        };
        RopeSpec spec{.nHeads = 2, .headDim = 8, .nRot = 8, .freqBase = 10000.0f, .style = RopeStyle::NeoX};
        check(spec, "first");
        check(spec, "same again");
        spec.freqBase = 500000.0f;
        check(spec, "another base");
        spec.nRot = 4;
        check(spec, "fewer rotated dimensions");
        spec.nRot = 8;
        spec.freqFactors = &factorTensor;
        check(spec, "with factors");
        factors[1] = 2.0f;
        check(spec, "new factor values at the same address");
        spec.freqFactors = nullptr;
        check(spec, "without factors again");
    }

    // The vision-transformer ops against their definitions, computed here in double precision.
    void visionOps() {
        auto b = makeCpuBackend({.threads = 1, .simd = false});
        std::mt19937 rng(9);
        std::normal_distribution<float> normal(0.0f, 2.0f);
        const std::int64_t n = 37, rows = 3;
        std::vector<float> x(static_cast<std::size_t>(n * rows)), y(x.size());
        for (auto& v : x) v = normal(rng) + 1.5f;
        const Matrix w = randomMatrix(DType::F32, n, 1, 4), bias = randomMatrix(DType::F16, n, 1, 5);
        b->layerNorm(x.data(), w.tensor, bias.tensor, 1e-5f, n, rows, y.data());
        for (std::int64_t r = 0; r < rows; ++r) {
            double mean = 0, var = 0;
            for (std::int64_t i = 0; i < n; ++i) mean += x[static_cast<std::size_t>(r * n + i)];
            mean /= n;
            for (std::int64_t i = 0; i < n; ++i) var += std::pow(x[static_cast<std::size_t>(r * n + i)] - mean, 2);
            var /= n;
            for (std::int64_t i = 0; i < n; ++i) {
                const auto k = static_cast<std::size_t>(r * n + i);
                const double want = (x[k] - mean) / std::sqrt(var + 1e-5) * w.values[static_cast<std::size_t>(i)] + bias.values[static_cast<std::size_t>(i)];
                QVERIFY2(std::fabs(y[k] - want) <= 1e-5 * (std::fabs(want) + 1), qPrintable(QStringLiteral("%1 vs %2").arg(y[k]).arg(want)));
            }
        }
        // GELU: exact, tanh approximation, quick.
        for (double v : {-3.0, -0.5, 0.0, 0.7, 2.5}) {
            float e = static_cast<float>(v), t = e, q = e;
            b->gelu(&e, 1, GeluKind::Erf);
            b->gelu(&t, 1, GeluKind::Tanh);
            b->gelu(&q, 1, GeluKind::Quick);
            QVERIFY(std::fabs(e - 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))) < 1e-6);
            QVERIFY(std::fabs(t - 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))) < 1e-6);
            QVERIFY(std::fabs(q - v / (1 + std::exp(-1.702 * v))) < 1e-6);
        }
        // Softmax rows sum to one and follow exp(x_i) / sum exp(x_j).
        y = x;
        b->softmax(y.data(), n, rows);
        for (std::int64_t r = 0; r < rows; ++r) {
            double total = 0;
            for (std::int64_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(x[static_cast<std::size_t>(r * n + i)]));
            for (std::int64_t i = 0; i < n; ++i) {
                const auto k = static_cast<std::size_t>(r * n + i);
                QVERIFY(std::fabs(y[k] - std::exp(static_cast<double>(x[k])) / total) < 1e-6);
            }
        }
        // Patch embedding against a direct stride-p convolution.
        const std::int64_t channels = 3, height = 6, width = 9, patch = 3, dim = 5;
        std::vector<float> image(static_cast<std::size_t>(channels * height * width));
        for (auto& v : image) v = normal(rng);
        const Matrix conv = randomMatrix(DType::F32, channels * patch * patch, dim, 6), convBias = randomMatrix(DType::F32, dim, 1, 7);
        const std::int64_t patches = (height / patch) * (width / patch);
        std::vector<float> out(static_cast<std::size_t>(patches * dim));
        b->patchEmbed(image.data(), channels, height, width, patch, conv.tensor, convBias.tensor, out.data());
        for (std::int64_t p = 0; p < patches; ++p)
            for (std::int64_t d = 0; d < dim; ++d) {
                double want = convBias.values[static_cast<std::size_t>(d)];
                for (std::int64_t c = 0; c < channels; ++c)
                    for (std::int64_t i = 0; i < patch; ++i)
                        for (std::int64_t j = 0; j < patch; ++j)
                            want += static_cast<double>(conv.values[static_cast<std::size_t>(d * channels * patch * patch + (c * patch + i) * patch + j)]) *
                                    image[static_cast<std::size_t>((c * height + (p / (width / patch)) * patch + i) * width + (p % (width / patch)) * patch + j)];
                QVERIFY(std::fabs(out[static_cast<std::size_t>(p * dim + d)] - want) < 1e-4);
            }
        // Self-attention of 3 rows, one head of 2: each row's softmax over all three keys.
        {
            const std::vector<float> q{1, 0, 0, 1, 1, 1}, k{1, 2, -1, 0, 0.5f, 0.5f}, v{1, 0, 0, 1, 2, 2};
            std::vector<float> o(6);
            b->selfAttention(q.data(), k.data(), v.data(), 3, AttentionSpec{1, 1, 2}, o.data());
            for (int r = 0; r < 3; ++r) {
                double s[3], total = 0;
                for (int t = 0; t < 3; ++t) total += s[t] = std::exp((q[2 * r] * k[2 * t] + q[2 * r + 1] * k[2 * t + 1]) / std::sqrt(2.0));
                for (int d = 0; d < 2; ++d) {
                    double want = 0;
                    for (int t = 0; t < 3; ++t) want += s[t] / total * v[2 * t + d];
                    QVERIFY(std::fabs(o[2 * r + d] - want) < 1e-6);
                }
            }
        }
        // mul
        std::vector<float> a{1, 2, -3}, m{2, 0.5f, 4};
        b->mul(a.data(), m.data(), 3);
        QCOMPARE(a, (std::vector<float>{2, 1, -12}));
    }
};

QTEST_GUILESS_MAIN(TestCpuBackend)
#include "tst_cpu_backend.moc"
