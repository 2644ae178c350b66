// Tensor formats: dequantization bit-exact against the independent numpy reference
// (fixtures/make_quant_fixtures.py), quantize -> dequantize error bounds, dot products.

#include <QtTest>
#include <cmath>
#include <random>

#include "inference/formats/half.h"
#include "inference/formats/quants.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

QString fixture(const QString& name) { return QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/quants/") + name; }

std::vector<float> randomNormal(std::size_t n, unsigned seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

}  // namespace

class TestQuants : public QObject {
    Q_OBJECT
private slots:
    void dequantizeMatchesReference_data() {
        QTest::addColumn<int>("type");
        for (DType t : kAllDTypes)
            if (t != DType::F32) QTest::newRow(std::string(name(t)).c_str()) << static_cast<int>(t);
    }
    // Tolerance: none. Both sides compute in float32 in the same order, so every value must
    // be bit-identical.
    void dequantizeMatchesReference() {
        QFETCH(int, type);
        const DType t = static_cast<DType>(type);
        const QByteArray blocks = lumen::test::readFile(fixture(QString::fromLatin1(name(t).data()) + ".blocks"));
        const QByteArray expected = lumen::test::readFile(fixture(QString::fromLatin1(name(t).data()) + ".f32"));
        QVERIFY(!blocks.isEmpty());
        const std::int64_t n = expected.size() / 4;
        QCOMPARE(blocks.size(), static_cast<qsizetype>(*byteSize(t, n)));
        std::vector<float> got(static_cast<std::size_t>(n));
        dequantize(t, blocks.constData(), got.data(), n);
        for (std::int64_t i = 0; i < n; ++i) {
            float want;
            std::memcpy(&want, expected.constData() + 4 * i, 4);
            if (std::bit_cast<std::uint32_t>(got[static_cast<std::size_t>(i)]) != std::bit_cast<std::uint32_t>(want))
                QFAIL(qPrintable(QStringLiteral("element %1: got %2, reference %3").arg(i).arg(got[static_cast<std::size_t>(i)]).arg(want)));
        }
    }

    void halfConversionMatchesNumpy() {
        const QByteArray in = lumen::test::readFile(fixture("f32_to_f16.in"));
        const QByteArray out = lumen::test::readFile(fixture("f32_to_f16.out"));
        QCOMPARE(in.size() / 4, out.size() / 2);
        for (qsizetype i = 0; i < out.size() / 2; ++i) {
            float f;
            std::uint16_t want;
            std::memcpy(&f, in.constData() + 4 * i, 4);
            std::memcpy(&want, out.constData() + 2 * i, 2);
            QVERIFY2(floatToHalf(f) == want, qPrintable(QStringLiteral("%1 -> %2, numpy %3").arg(f).arg(floatToHalf(f)).arg(want)));
        }
    }

    void everyHalfRoundTrips() {
        for (std::uint32_t h = 0; h < 65536; ++h) {
            const float f = halfToFloat(static_cast<std::uint16_t>(h));
            if (std::isnan(f)) continue;
            QCOMPARE(floatToHalf(f), static_cast<std::uint16_t>(h));
        }
        QCOMPARE(floatToBf16(1.0f), std::uint16_t(0x3F80));
        QCOMPARE(floatToBf16(std::bit_cast<float>(0x3F808000u)), std::uint16_t(0x3F80));  // tie -> even
        QCOMPARE(floatToBf16(std::bit_cast<float>(0x3F818000u)), std::uint16_t(0x3F82));  // tie -> even (up)
        QCOMPARE(bf16ToFloat(0xC040), -3.0f);
    }

    // Quantize -> dequantize on N(0, 1) data: relative RMS error (rms(error) / rms(x)) below a
    // bound per type, and the values must not be all zero. Bounds are about 1.5x what the
    // quantizers achieved when written (printed by the test), so a regression fails.
    void quantizeErrorBounds_data() {
        QTest::addColumn<int>("type");
        QTest::addColumn<double>("bound");
        QTest::newRow("F16") << static_cast<int>(DType::F16) << 0.0004;
        QTest::newRow("BF16") << static_cast<int>(DType::BF16) << 0.0025;
        QTest::newRow("Q8_0") << static_cast<int>(DType::Q8_0) << 0.008;
        QTest::newRow("Q6_K") << static_cast<int>(DType::Q6_K) << 0.028;
        QTest::newRow("Q5_0") << static_cast<int>(DType::Q5_0) << 0.064;
        QTest::newRow("Q5_1") << static_cast<int>(DType::Q5_1) << 0.057;
        QTest::newRow("Q4_K") << static_cast<int>(DType::Q4_K) << 0.12;
        QTest::newRow("Q4_0") << static_cast<int>(DType::Q4_0) << 0.13;
        QTest::newRow("Q4_1") << static_cast<int>(DType::Q4_1) << 0.12;
        QTest::newRow("IQ4_NL") << static_cast<int>(DType::IQ4_NL) << 0.115;
        QTest::newRow("IQ4_XS") << static_cast<int>(DType::IQ4_XS) << 0.12;
        QTest::newRow("MXFP4") << static_cast<int>(DType::MXFP4) << 0.17;
    }
    void quantizeErrorBounds() {
        QFETCH(int, type);
        QFETCH(double, bound);
        const DType t = static_cast<DType>(type);
        const std::int64_t n = 256 * 64;
        const auto x = randomNormal(static_cast<std::size_t>(n), 7);
        std::vector<std::uint8_t> q(static_cast<std::size_t>(*byteSize(t, n)));
        quantize(t, x.data(), q.data(), n);
        std::vector<float> y(static_cast<std::size_t>(n));
        dequantize(t, q.data(), y.data(), n);
        double err = 0, ref = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            err += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
            ref += x[i] * static_cast<double>(x[i]);
        }
        const double rel = std::sqrt(err / ref);
        qInfo("%s: relative RMS error %.5f (bound %.3f)", std::string(name(t)).c_str(), rel, bound);
        QVERIFY2(rel < bound, qPrintable(QStringLiteral("relative RMS error %1").arg(rel)));
    }

    void quantizeHandlesZerosAndConstants() {
        for (DType t : kAllDTypes) {
            if (!canQuantize(t)) continue;
            const std::int64_t n = 256;
            for (float value : {0.0f, 0.5f, -3.0f}) {
                std::vector<float> x(n, value), y(n);
                std::vector<std::uint8_t> q(static_cast<std::size_t>(*byteSize(t, n)));
                quantize(t, x.data(), q.data(), n);
                dequantize(t, q.data(), y.data(), n);
                for (float v : y) QVERIFY2(std::fabs(v - value) <= 0.02f * std::fabs(value) + 1e-6f, std::string(name(t)).c_str());
            }
        }
    }

    // dot() equals dequantize-then-multiply (both accumulate in double); relative 1e-6.
    void dotMatchesDequantized() {
        for (DType t : kAllDTypes) {
            const std::int64_t n = 512;
            std::vector<std::uint8_t> w(static_cast<std::size_t>(*byteSize(t, n)));
            std::mt19937 rng(3);
            for (auto& b : w) b = static_cast<std::uint8_t>(rng());
            if (canQuantize(t)) {
                const auto src = randomNormal(static_cast<std::size_t>(n), 11);
                quantize(t, src.data(), w.data(), n);
            } else {
                // Random bytes with sane fp16 scales: re-quantize fields by decoding and clamping.
                std::vector<float> probe(static_cast<std::size_t>(n));
                for (int attempt = 0; attempt < 100; ++attempt) {
                    dequantize(t, w.data(), probe.data(), n);
                    bool finite = true;
                    for (float v : probe) finite &= std::isfinite(v) && std::fabs(v) < 1e6f;
                    if (finite) break;
                    for (auto& b : w) b = static_cast<std::uint8_t>(rng() & 0x3B);  // keeps fp16 exponents small
                }
            }
            const auto x = randomNormal(static_cast<std::size_t>(n), 5);
            std::vector<float> wf(static_cast<std::size_t>(n));
            dequantize(t, w.data(), wf.data(), n);
            double expected = 0;
            for (std::int64_t i = 0; i < n; ++i) expected += static_cast<double>(wf[static_cast<std::size_t>(i)]) * x[static_cast<std::size_t>(i)];
            const float got = dot(t, w.data(), x.data(), n);
            QVERIFY2(std::fabs(got - expected) <= 1e-6 * (std::fabs(expected) + 1.0),
                     qPrintable(QStringLiteral("%1: %2 vs %3").arg(QString::fromLatin1(name(t).data())).arg(got).arg(expected)));
        }
    }

    void rejectsPartialBlocks() {
        std::vector<float> x(33);
        std::vector<std::uint8_t> q(64);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, quantize(DType::Q8_0, x.data(), q.data(), 33));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, dequantize(DType::Q4_K, q.data(), x.data(), 32));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, quantize(DType::Q3_K, x.data(), q.data(), 256));
        QVERIFY(!byteSize(DType::Q4_0, 31));
        QVERIFY(!byteSize(DType::F32, std::numeric_limits<std::int64_t>::max()));
        QCOMPARE(*byteSize(DType::Q6_K, 512), std::int64_t(420));
    }

    void namesAndIds() {
        QVERIFY(dtypeFromName("q4_k") == DType::Q4_K);
        QVERIFY(!dtypeFromName("Q9_9"));
        QVERIFY(dtypeFromGguf(30) == DType::BF16);
        QVERIFY(!dtypeFromGguf(16));  // IQ2_XXS: not supported
    }
};

QTEST_GUILESS_MAIN(TestQuants)
#include "tst_quants.moc"
