#pragma once
// A fixed pool of worker threads for splitting one op across cores. parallelFor cuts [0, n) into
// contiguous chunks, shrinking as the work runs out, which the threads take in turn, and waits
// for all of them; between ops the workers spin briefly
// before sleeping, so back-to-back ops (a decode step is hundreds) pay little to wake them.
// One pool may serve several backends on several threads (the app's LLM and vision share one,
// so the cores are not asked for twice): callers take turns, one op at a time.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lumen::inference {

class ThreadPool {
public:
    // threads <= 0: the number of physical cores.
    explicit ThreadPool(int threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }  // the caller works too

    // Calls fn(begin, end) on disjoint ranges covering [0, n), in parallel; returns when all are
    // done. When a call throws, no further ranges start, and once the calls under way have
    // returned, the first exception is rethrown here (the pool stays usable). Callers on other
    // threads wait for the op under way; `fn` must not call parallelFor on the same pool.
    void parallelFor(std::int64_t n, const std::function<void(std::int64_t begin, std::int64_t end)>& fn);

private:
    void workerLoop();
    void runChunks();  // takes chunks of the current job until none is left

    std::vector<std::thread> workers_;
    std::mutex callers_;  // held through one parallelFor: callers take turns
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
    std::int64_t jobSize_ = 0;
    std::int64_t minChunk_ = 1;
    std::atomic<std::int64_t> next_{0};
    std::exception_ptr error_;  // the current job's first exception (under mutex_)
};

}  // namespace lumen::inference
