// Crash safety: a child process streams replies into the database and is SIGKILLed at random
// moments, 50 times. After each kill the database must pass integrity_check and hold every row
// the child reported as committed, with at least the text it reported.

#include <QElapsedTimer>
#include <QProcess>
#include <QRandomGenerator>
#include <QtTest>
#include <map>

#include "crash_protocol.h"
#include "storage/chat_store.h"
#include "storage/database.h"
#include "test_util.h"

using namespace lumen::storage;
namespace crash = lumen::test::crash;

class TestCrashSafety : public QObject {
    Q_OBJECT
private slots:
    void survivesRandomKills() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath("crash.db");
        struct Expected {
            bool user = false;
            std::size_t length = 0;
            bool finished = false;
        };
        std::map<std::int64_t, Expected> expected;
        QRandomGenerator rng(20261122);
        int totalLines = 0, finishedReplies = 0;
        qint64 minDelay = 1 << 30, maxDelay = 0;
        constexpr int kKills = 50;

        for (int run = 0; run < kKills; ++run) {
            QProcess child;
            child.start(QStringLiteral(LUMEN_CRASH_WRITER), {path, QString::number(run)});
            QVERIFY2(child.waitForStarted(10000), qPrintable(child.errorString()));
            QByteArray output;
            QElapsedTimer sinceReady;
            const qint64 delay = rng.bounded(5, 400);  // ms after the child is ready
            minDelay = std::min(minDelay, delay);
            maxDelay = std::max(maxDelay, delay);
            while (!output.contains("ready\n")) {
                QVERIFY2(child.waitForReadyRead(10000), "the crash writer did not start");
                output += child.readAllStandardOutput();
            }
            sinceReady.start();
            while (sinceReady.elapsed() < delay) {
                child.waitForReadyRead(static_cast<int>(delay - sinceReady.elapsed()));
                output += child.readAllStandardOutput();
            }
            child.kill();  // SIGKILL
            QVERIFY(child.waitForFinished(10000));
            output += child.readAllStandardOutput();
            QCOMPARE(child.exitStatus(), QProcess::CrashExit);

            // Only complete lines describe finished commits.
            const QList<QByteArray> lines = output.left(output.lastIndexOf('\n')).split('\n');
            for (const QByteArray& line : lines) {
                const QList<QByteArray> f = line.split(' ');
                if (f[0] == "U") {
                    expected[f[1].toLongLong()].user = true;
                } else if (f[0] == "P" || f[0] == "F") {
                    Expected& e = expected[f[1].toLongLong()];
                    e.length = std::max<std::size_t>(e.length, f[2].toULongLong());
                    if (f[0] == "F") {
                        e.finished = true;
                        ++finishedReplies;
                    }
                }
                ++totalLines;
            }

            Database db = Database::open(path.toStdString());
            QCOMPARE(QString::fromStdString(db.integrityCheck()), QStringLiteral("ok"));
            ChatStore chats(db);
            for (const auto& [id, e] : expected) {
                const auto m = chats.message(id);
                QVERIFY2(m, qPrintable(QStringLiteral("run %1: committed message %2 is missing").arg(run).arg(id)));
                if (e.user) {
                    QCOMPARE(QString::fromStdString(m->content), QString::fromStdString(crash::userText(id)));
                    continue;
                }
                QVERIFY2(m->content.size() >= e.length,
                         qPrintable(QStringLiteral("run %1: reply %2 lost committed text").arg(run).arg(id)));
                QCOMPARE(QString::fromStdString(m->content.substr(0, e.length)),
                         QString::fromStdString(crash::replyPrefix(id, e.length)));
                if (e.finished) QVERIFY(m->status == MessageStatus::Complete);
            }
            // The full-text index agrees with the table after every crash.
            db.connection().exec("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)");
        }
        qInfo("%d kills (%lld-%lld ms after start), %d commit reports checked, %zu messages, %d finished replies",
              kKills, minDelay, maxDelay, totalLines, expected.size(), finishedReplies);
        QVERIFY(expected.size() > static_cast<std::size_t>(kKills));  // the child did real work
    }
};

QTEST_GUILESS_MAIN(TestCrashSafety)
#include "tst_crash_safety.moc"
