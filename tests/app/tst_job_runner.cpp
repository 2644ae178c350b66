// The job runner: lanes that run their jobs in order on a thread of their own and side by side
// with each other, cancellation (running and queued), progress signals, wait, shutdown that
// cancels and joins, and the CPU pool the backends share.

#include <QSignalSpy>
#include <QtTest>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "app/job_runner.h"
#include "inference/core/thread_pool.h"

using namespace lumen;
using namespace std::chrono_literals;

class TestJobRunner : public QObject {
    Q_OBJECT
private slots:
    void laneRunsInOrderOnItsThread() {
        app::JobRunner jobs;
        std::mutex m;
        std::vector<int> order;
        std::vector<std::thread::id> threads;
        for (int i = 0; i < 20; ++i)
            jobs.submit(app::Lane::Llm, {}, [&, i](app::JobControl&) {
                std::this_thread::sleep_for(100us);
                std::lock_guard lock(m);
                order.push_back(i);
                threads.push_back(std::this_thread::get_id());
            });
        jobs.wait(app::Lane::Llm);
        QCOMPARE(order.size(), std::size_t{20});
        for (int i = 0; i < 20; ++i) QCOMPARE(order[static_cast<std::size_t>(i)], i);
        for (const auto& t : threads) QCOMPARE(t, threads.front());
        QVERIFY(threads.front() != std::this_thread::get_id());
        QVERIFY(!jobs.busy(app::Lane::Llm));
    }

    // A long LLM job does not hold up vision's: the lanes run side by side.
    void lanesRunSideBySide() {
        app::JobRunner jobs;
        std::atomic<bool> release{false}, visionRan{false};
        jobs.submit(app::Lane::Llm, {}, [&](app::JobControl&) {
            while (!release.load()) std::this_thread::sleep_for(1ms);
        });
        jobs.submit(app::Lane::Vision, {}, [&](app::JobControl&) { visionRan = true; });
        jobs.wait(app::Lane::Vision);
        QVERIFY(visionRan.load());
        QVERIFY(jobs.busy(app::Lane::Llm));
        release = true;
        jobs.wait(app::Lane::Llm);
        QVERIFY(!jobs.busy(app::Lane::Llm));
    }

    // Cancelling: the running job sees it and ends; a queued one runs seeing it from the start;
    // the others are untouched. finished() says which ended cancelled; progress arrives as signals.
    void cancelAndProgress() {
        app::JobRunner jobs;
        QSignalSpy started(&jobs, &app::JobRunner::started), finished(&jobs, &app::JobRunner::finished),
            progressed(&jobs, &app::JobRunner::progressed);
        std::atomic<bool> running{false}, sawCancelAtStart{false}, thirdCancelled{true};
        const auto first = jobs.submit(app::Lane::Vision, QStringLiteral("long"), [&](app::JobControl& c) {
            c.progress(0.25, QStringLiteral("a quarter"));
            running = true;
            while (!c.cancelled()) std::this_thread::sleep_for(1ms);
        });
        const auto second = jobs.submit(app::Lane::Vision, QStringLiteral("queued"), [&](app::JobControl& c) { sawCancelAtStart = c.cancelled(); });
        jobs.submit(app::Lane::Vision, QStringLiteral("kept"), [&](app::JobControl& c) { thirdCancelled = c.cancelled(); });
        while (!running.load()) std::this_thread::sleep_for(1ms);
        jobs.cancel(second);
        jobs.cancel(first);
        jobs.wait(app::Lane::Vision);
        QVERIFY(sawCancelAtStart.load());
        QVERIFY(!thirdCancelled.load());
        QTRY_COMPARE(finished.count(), 3);
        QCOMPARE(started.count(), 3);
        QCOMPARE(started[0][2].toString(), QStringLiteral("long"));
        QCOMPARE(finished[0][0].toULongLong(), first);
        QCOMPARE(finished[0][1].toInt(), static_cast<int>(app::Lane::Vision));
        QCOMPARE(finished[0][2].toBool(), true);
        QCOMPARE(finished[1][2].toBool(), true);
        QCOMPARE(finished[2][2].toBool(), false);
        QCOMPARE(progressed.count(), 1);
        QCOMPARE(progressed[0][2].toDouble(), 0.25);
        QCOMPARE(progressed[0][3].toString(), QStringLiteral("a quarter"));
    }

    // A job that throws is logged; the lane goes on.
    void exceptionsDoNotStopTheLane() {
        app::JobRunner jobs;
        bool after = false;
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("background job .*thrower.* failed: boom"));
        jobs.submit(app::Lane::Downloads, QStringLiteral("thrower"), [](app::JobControl&) { throw std::runtime_error("boom"); });
        jobs.submit(app::Lane::Downloads, {}, [&](app::JobControl&) { after = true; });
        jobs.wait(app::Lane::Downloads);
        QVERIFY(after);
    }

    // Shutdown cancels what runs and joins: a job that runs until cancelled does not hold it up.
    void shutdownCancelsAndJoins() {
        std::atomic<bool> ended{false}, started{false};
        {
            app::JobRunner jobs;
            jobs.submit(app::Lane::Llm, {}, [&](app::JobControl& c) {
                started = true;
                while (!c.cancelled()) std::this_thread::sleep_for(1ms);
                ended = true;
            });
            while (!started.load()) std::this_thread::sleep_for(1ms);
        }
        QVERIFY(ended.load());
    }

    // One pool for the backends: the same one while the size asked for stays; another size makes
    // a new one, which -1 (the current pool) then gives.
    void sharedCpuPool() {
        app::JobRunner jobs;
        const auto a = jobs.cpuPool();
        QVERIFY(a);
        QCOMPARE(jobs.cpuPool().get(), a.get());
        QCOMPARE(jobs.cpuPool(a->size()).get(), a.get());
        const auto b = jobs.cpuPool(a->size() + 1);
        QVERIFY(b.get() != a.get());
        QCOMPARE(b->size(), a->size() + 1);
        QCOMPARE(jobs.cpuPool().get(), b.get());
    }
};

QTEST_GUILESS_MAIN(TestJobRunner)
#include "tst_job_runner.moc"
