#pragma once
// A tiny logger for the engine, which knows no Qt. The app layer installs a sink that forwards
// to its Qt logging categories; the default sink writes to stderr.

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace lumen::inference {

enum class LogLevel { Debug, Info, Warning, Error };

using LogSink = std::function<void(LogLevel, std::string_view message)>;

// Replaces the sink (thread-safe); an empty sink restores the stderr default.
void setLogSink(LogSink sink);
void setLogLevel(LogLevel minimum);
LogLevel logLevel();
void logMessage(LogLevel level, std::string_view message);
std::string_view logLevelName(LogLevel level);

// Streams its pieces into one message and logs it at the end of the statement:
//   Log(LogLevel::Info) << "loaded " << n << " tensors";
class Log {
public:
    explicit Log(LogLevel level) : level_(level), enabled_(level >= logLevel()) {}
    ~Log() {
        if (enabled_) logMessage(level_, stream_.str());
    }
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    template <typename T>
    Log& operator<<(const T& value) {
        if (enabled_) stream_ << value;
        return *this;
    }

private:
    LogLevel level_;
    bool enabled_;
    std::ostringstream stream_;
};

}  // namespace lumen::inference
