#pragma once
// What every lumen-cli command receives, and the option parsing the commands share.

#include <QCommandLineParser>
#include <QStringList>
#include <QTextStream>
#include <cmath>
#include <exception>
#include <optional>
#include <type_traits>

namespace lumen::app::cli {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

struct Context {
    QCommandLineParser& parser;
    QStringList positional;  // after the command name
    QTextStream& out;
    QTextStream& err;
    QTextStream* in;
};

// Prints "lumen-cli: <before><what the error says><after>" on standard error and returns `code`:
// every command's way of turning an exception into a message and an exit status.
inline int fail(Context& ctx, const std::exception& e, int code = kFailed, const QString& before = {}, const QString& after = {}) {
    ctx.err << "lumen-cli: " << before << QString::fromUtf8(e.what()) << after << "\n";
    return code;
}

// --name as a number in [low, high], `fallback` when absent; nullopt (message printed) when bad.
template <typename T>
std::optional<T> numberOption(Context& ctx, const char* name, T fallback, T low, T high) {
    if (!ctx.parser.isSet(QString::fromLatin1(name))) return fallback;
    bool ok = false;
    const QString text = ctx.parser.value(QString::fromLatin1(name)).trimmed();
    // Whole numbers as digits ("1e3" is not one); numbers finite (NaN compares false with every bound).
    const double v = std::is_integral_v<T> ? static_cast<double>(text.toLongLong(&ok)) : text.toDouble(&ok);
    if (!ok || !std::isfinite(v) || v < static_cast<double>(low) || v > static_cast<double>(high)) {
        ctx.err << "lumen-cli: --" << name << " must be " << (std::is_integral_v<T> ? "a whole number" : "a number") << " from " << low
                << " to " << high << ", not '" << text << "'\n";
        return std::nullopt;
    }
    return static_cast<T>(v);
}

}  // namespace lumen::app::cli
