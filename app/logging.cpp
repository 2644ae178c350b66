#include "app/logging.h"

#include "inference/core/log.h"

namespace lumen::app {

Q_LOGGING_CATEGORY(lcApp, "lumen.app")
Q_LOGGING_CATEGORY(lcEngine, "lumen.engine")
Q_LOGGING_CATEGORY(lcStorage, "lumen.storage")

void installEngineLogSink() {
    using inference::LogLevel;
    inference::setLogSink([](LogLevel level, std::string_view message) {
        const QString text = QString::fromUtf8(message.data(), static_cast<qsizetype>(message.size()));
        switch (level) {
            case LogLevel::Debug: qCDebug(lcEngine).noquote() << text; break;
            case LogLevel::Info: qCInfo(lcEngine).noquote() << text; break;
            case LogLevel::Warning: qCWarning(lcEngine).noquote() << text; break;
            case LogLevel::Error: qCCritical(lcEngine).noquote() << text; break;
        }
    });
}

}  // namespace lumen::app
