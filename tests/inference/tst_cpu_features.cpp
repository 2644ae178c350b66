// Run-time CPU detection agrees with what the kernel reports in /proc/cpuinfo.

#include <QFile>
#include <QtTest>

#include "inference/core/compute_devices.h"
#include "inference/core/cpu_features.h"
#include "inference/core/log.h"

using namespace lumen::inference;

class TestCpuFeatures : public QObject {
    Q_OBJECT
private slots:
    void matchesProcCpuinfo() {
        QFile cpuinfo(QStringLiteral("/proc/cpuinfo"));
        if (!cpuinfo.open(QIODevice::ReadOnly)) QSKIP("no /proc/cpuinfo on this system");
        QSet<QString> flags;
        for (const QByteArray& line : cpuinfo.readAll().split('\n')) {
            if (!line.startsWith("flags")) continue;
            for (const QByteArray& f : line.mid(line.indexOf(':') + 1).trimmed().split(' ')) flags.insert(QString::fromLatin1(f));
            break;
        }
        if (flags.isEmpty()) QSKIP("/proc/cpuinfo lists no flags (not x86?)");
        const CpuFeatures& f = cpuFeatures();
        QCOMPARE(f.avx2, flags.contains("avx2"));
        QCOMPARE(f.fma, flags.contains("fma"));
        QCOMPARE(f.f16c, flags.contains("f16c"));
        QCOMPARE(f.avx512f, flags.contains("avx512f"));
        QCOMPARE(f.avx512vnni, flags.contains("avx512_vnni"));
        QCOMPARE(f.avx512vbmi, flags.contains("avx512vbmi"));
        QCOMPARE(f.avx512bf16, flags.contains("avx512_bf16"));
        QVERIFY(f.physicalCores >= 1 && f.physicalCores <= f.logicalCores);
        QVERIFY(!f.summary().empty());
    }

    void devicesAlwaysAnswer() {
        const ComputeDevices d = queryComputeDevices();
        // Either GPUs are listed or we are told why not; never neither.
        QVERIFY(!d.gpus.empty() || !d.cudaUnavailableReason.empty());
    }

    void logSinkReceivesMessages() {
        std::vector<std::string> seen;
        setLogSink([&](LogLevel, std::string_view m) { seen.emplace_back(m); });
        setLogLevel(LogLevel::Info);
        Log(LogLevel::Info) << "loaded " << 3 << " tensors";
        Log(LogLevel::Debug) << "hidden";
        setLogSink({});
        QCOMPARE(seen.size(), std::size_t(1));
        QCOMPARE(QString::fromStdString(seen[0]), QStringLiteral("loaded 3 tensors"));
    }
};

QTEST_GUILESS_MAIN(TestCpuFeatures)
#include "tst_cpu_features.moc"
