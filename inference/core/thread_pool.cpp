#include "inference/core/thread_pool.h"

#include <algorithm>

#include "inference/core/cpu_features.h"

namespace lumen::inference {
namespace {

constexpr int kSpinIterations = 20000;  // about 10-50 us of polling before sleeping
constexpr std::int64_t kChunksPerThread = 4;   // the smallest chunk: 1/16 of an even share

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
    const int n = threads > 0 ? threads : cpuFeatures().physicalCores;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::workerLoop() {
    std::uint64_t seen = 0;
    while (true) {
        // Wait for a new job: spin first, then sleep.
        int spins = 0;
        while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
            cpuRelax();
            ++spins;
        }
        if (generation_.load(std::memory_order_acquire) == seen) {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load() != seen; });
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load()) return;
        runChunks();
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::parallelFor(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn) {
    if (n <= 0) return;
    if (workers_.empty()) {
        fn(0, n);
        return;
    }
    const std::lock_guard turn(callers_);
    {
        std::lock_guard lock(mutex_);
        job_ = &fn;
        jobSize_ = n;
        // Chunks taken in turn, each half of an even share of what is left (down to a floor): a
        // thread that starts late (waking up) or runs slower does less, and the last chunks are
        // small, so nobody waits long for the others.
        minChunk_ = std::max<std::int64_t>(1, n / (kChunksPerThread * size()));
        next_.store(0, std::memory_order_relaxed);
        pending_.store(static_cast<int>(workers_.size()), std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    runChunks();
    while (pending_.load(std::memory_order_acquire) > 0) cpuRelax();
    std::exception_ptr error;
    {
        std::lock_guard lock(mutex_);
        std::swap(error, error_);
    }
    if (error) std::rethrow_exception(error);
}

void ThreadPool::runChunks() {
    const std::int64_t n = jobSize_, parts = size();
    std::int64_t begin = next_.load(std::memory_order_relaxed);
    while (begin < n) {
        const std::int64_t end = std::min(n, begin + std::max(minChunk_, (n - begin) / (2 * parts)));
        if (next_.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
            try {
                (*job_)(begin, end);
            } catch (...) {
                // Keep the first; hand out nothing more (the others finish what they hold).
                std::lock_guard lock(mutex_);
                if (!error_) error_ = std::current_exception();
                next_.store(n, std::memory_order_relaxed);
            }
            begin = next_.load(std::memory_order_relaxed);
        }
    }
}

}  // namespace lumen::inference
