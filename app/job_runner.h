#pragma once
// The app's background work, in lanes. Each lane runs its jobs one at a time, in the order they
// came, on a thread of its own: the language model's (load, reply), vision's (load, classify)
// and downloads'. A job can be cancelled: it sees cancelled() at its next check and ends early;
// one cancelled while queued still runs, seeing cancelled() from the start, so that it can tell
// whoever waits for it that it ended. Jobs report progress, which reaches the runner's thread as a
// signal. The language model's and vision's CPU backends share one thread pool, so the cores are
// not asked for twice. Destroying the runner cancels every job and joins the lanes; jobs must not
// outlive what they use, so owners call wait() for their lane before they go.

#include <QObject>
#include <QString>
#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

namespace lumen::inference {
class ThreadPool;
}

namespace lumen::app {

enum class Lane { Llm = 0, Vision = 1, Downloads = 2 };
inline constexpr int kLaneCount = 3;

class JobRunner;

// What a running job holds: its cancel flag and a way to report progress.
class JobControl {
public:
    bool cancelled() const { return cancel_->load(std::memory_order_relaxed); }
    // For engine calls that poll a flag of their own (Generator::generate, template rendering).
    const std::atomic<bool>* cancelFlag() const { return cancel_.get(); }
    // fraction in [0, 1] (negative: not known), and a note for the status line ("Encoding image 3 of 50").
    void progress(double fraction, const QString& note = {}) const;

private:
    friend class JobRunner;
    JobControl(JobRunner* runner, quint64 id, Lane lane, std::shared_ptr<std::atomic<bool>> cancel)
        : runner_(runner), id_(id), lane_(lane), cancel_(std::move(cancel)) {}
    JobRunner* runner_;
    quint64 id_;
    Lane lane_;
    std::shared_ptr<std::atomic<bool>> cancel_;
};

class JobRunner : public QObject {
    Q_OBJECT
public:
    using JobId = quint64;

    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override;

    // Queues `work` on `lane`; it runs on the lane's thread. An exception it lets out is logged
    // (jobs report their own errors to whoever waits for them). started() and finished() tell
    // of jobs with a title; untitled ones (the engine's own steps) pass silently.
    JobId submit(Lane lane, const QString& title, std::function<void(JobControl&)> work);
    // The job sees cancelled() (queued or running). Unknown or finished ids: nothing.
    void cancel(JobId id);
    void cancelAll();
    // Returns once every job queued on `lane` before this call has run. Not from the lane's own thread.
    void wait(Lane lane);
    // A job is queued or running on `lane`.
    bool busy(Lane lane) const;

    // The CPU thread pool the backends share: `threads` workers (0: the physical cores; -1: the
    // current pool, at first the physical cores). Asking for another size makes a new pool for
    // what is made next; backends keep theirs alive.
    std::shared_ptr<inference::ThreadPool> cpuPool(int threads = -1);

signals:
    void progressed(quint64 id, int lane, double fraction, const QString& note);
    void started(quint64 id, int lane, const QString& title);
    void finished(quint64 id, int lane, bool cancelled);

private:
    friend class JobControl;
    struct LaneState;
    std::array<std::unique_ptr<LaneState>, kLaneCount> lanes_;
    std::atomic<JobId> nextId_{1};
    std::mutex poolMutex_;
    std::shared_ptr<inference::ThreadPool> pool_;
};

}  // namespace lumen::app
