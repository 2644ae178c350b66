#pragma once

#include <QLoggingCategory>

namespace lumen::app {

Q_DECLARE_LOGGING_CATEGORY(lcApp)
Q_DECLARE_LOGGING_CATEGORY(lcEngine)
Q_DECLARE_LOGGING_CATEGORY(lcStorage)

// Routes the engine's logger (which knows no Qt) into the lumen.engine category.
void installEngineLogSink();

}  // namespace lumen::app
