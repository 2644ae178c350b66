#include "app/job_runner.h"

#include <QMetaObject>
#include <condition_variable>
#include <deque>
#include <future>
#include <thread>

#include "app/logging.h"
#include "inference/core/cpu_features.h"
#include "inference/core/thread_pool.h"

namespace lumen::app {

struct JobRunner::LaneState {
    struct Job {
        JobId id = 0;
        QString title;
        std::function<void(JobControl&)> work;
        std::shared_ptr<std::atomic<bool>> cancel;
    };
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::deque<Job> queue;
    JobId running = 0;
    std::shared_ptr<std::atomic<bool>> runningCancel;
    bool stop = false;
    std::thread thread;
};

void JobControl::progress(double fraction, const QString& note) const {
    QMetaObject::invokeMethod(runner_, [runner = runner_, id = id_, lane = lane_, fraction, note] {
        emit runner->progressed(id, static_cast<int>(lane), fraction, note);
    });
}

JobRunner::JobRunner(QObject* parent) : QObject(parent) {
    for (int i = 0; i < kLaneCount; ++i) {
        lanes_[static_cast<std::size_t>(i)] = std::make_unique<LaneState>();
        LaneState& lane = *lanes_[static_cast<std::size_t>(i)];
        lane.thread = std::thread([this, &lane, i] {
            while (true) {
                LaneState::Job job;
                {
                    std::unique_lock lock(lane.mutex);
                    lane.wake.wait(lock, [&] { return lane.stop || !lane.queue.empty(); });
                    if (lane.queue.empty()) return;  // (stopping, nothing left)
                    job = std::move(lane.queue.front());
                    lane.queue.pop_front();
                    lane.running = job.id;
                    lane.runningCancel = job.cancel;
                }
                // A job cancelled while queued still runs, seeing cancelled() from the start, so it
                // can tell whoever waits for it that it ended.
                const bool silent = job.title.isEmpty();
                if (!silent) QMetaObject::invokeMethod(this, [this, id = job.id, i, title = job.title] { emit started(id, i, title); });
                JobControl control(this, job.id, static_cast<Lane>(i), job.cancel);
                try {
                    job.work(control);
                } catch (const std::exception& e) {
                    qCWarning(lcApp) << "background job" << job.title << "failed:" << e.what();
                }
                job.work = nullptr;  // what it captured goes here, on its lane
                {
                    std::lock_guard lock(lane.mutex);
                    lane.running = 0;
                    lane.runningCancel.reset();
                }
                if (!silent) QMetaObject::invokeMethod(this, [this, id = job.id, i, cancelled = job.cancel->load()] { emit finished(id, i, cancelled); });
            }
        });
    }
}

JobRunner::~JobRunner() {
    cancelAll();
    for (auto& lane : lanes_) {
        {
            std::lock_guard lock(lane->mutex);
            lane->stop = true;
        }
        lane->wake.notify_all();
    }
    for (auto& lane : lanes_) lane->thread.join();
}

JobRunner::JobId JobRunner::submit(Lane lane, const QString& title, std::function<void(JobControl&)> work) {
    LaneState& l = *lanes_[static_cast<std::size_t>(lane)];
    const JobId id = nextId_.fetch_add(1);
    {
        std::lock_guard lock(l.mutex);
        l.queue.push_back({id, title, std::move(work), std::make_shared<std::atomic<bool>>(false)});
    }
    l.wake.notify_one();
    return id;
}

void JobRunner::cancel(JobId id) {
    for (auto& lane : lanes_) {
        std::lock_guard lock(lane->mutex);
        if (lane->running == id && lane->runningCancel) lane->runningCancel->store(true);
        for (auto& job : lane->queue)
            if (job.id == id) job.cancel->store(true);
    }
}

void JobRunner::cancelAll() {
    for (auto& lane : lanes_) {
        std::lock_guard lock(lane->mutex);
        if (lane->runningCancel) lane->runningCancel->store(true);
        for (auto& job : lane->queue) job.cancel->store(true);
    }
}

void JobRunner::wait(Lane lane) {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    const JobId id = submit(lane, {}, [done](JobControl&) { done->set_value(); });
    future.get();
    // (the lane marks this job as no longer running just after it returns: until then busy()
    // would still say so)
    const LaneState& l = *lanes_[static_cast<std::size_t>(lane)];
    while (true) {
        {
            std::lock_guard lock(l.mutex);
            if (l.running != id) return;
        }
        std::this_thread::yield();
    }
}

bool JobRunner::busy(Lane lane) const {
    const LaneState& l = *lanes_[static_cast<std::size_t>(lane)];
    std::lock_guard lock(l.mutex);
    return l.running != 0 || !l.queue.empty();
}

std::shared_ptr<inference::ThreadPool> JobRunner::cpuPool(int threads) {
    const int size = threads > 0 ? threads : inference::cpuFeatures().physicalCores;
    std::lock_guard lock(poolMutex_);
    if (!pool_ || (threads >= 0 && pool_->size() != size)) pool_ = std::make_shared<inference::ThreadPool>(size);
    return pool_;
}

}  // namespace lumen::app
