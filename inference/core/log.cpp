#include "inference/core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace lumen::inference {
namespace {

std::mutex gSinkMutex;
LogSink gSink;  // guarded by gSinkMutex
std::atomic<LogLevel> gLevel{LogLevel::Info};

}  // namespace

std::string_view logLevelName(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warning: return "warning";
        case LogLevel::Error: return "error";
    }
    return "?";
}

void setLogSink(LogSink sink) {
    std::lock_guard lock(gSinkMutex);
    gSink = std::move(sink);
}

void setLogLevel(LogLevel minimum) { gLevel.store(minimum); }

LogLevel logLevel() { return gLevel.load(); }

void logMessage(LogLevel level, std::string_view message) {
    if (level < gLevel.load()) return;
    std::lock_guard lock(gSinkMutex);
    if (gSink) {
        gSink(level, message);
        return;
    }
    const std::string_view name = logLevelName(level);
    std::fprintf(stderr, "lumen [%.*s] %.*s\n", static_cast<int>(name.size()), name.data(),
                 static_cast<int>(message.size()), message.data());
}

}  // namespace lumen::inference
