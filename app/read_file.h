#pragma once
// Reading a whole file the user named (an image, a template, a context, a chat export): regular
// files only, so a FIFO does not block and /dev/zero does not fill memory, and at most `maxBytes`.

#include <QByteArray>
#include <QString>
#include <optional>

namespace lumen::app {

inline constexpr qint64 kMaxImageFileBytes = 256ll << 20;  // far past any photo a model can use
inline constexpr qint64 kMaxTextFileBytes = 64ll << 20;    // templates, contexts, configs
inline constexpr qint64 kMaxExportFileBytes = 4ll << 30;   // a chat export with its images

// The file's bytes, or nullopt with `error` saying why ("not a regular file", "is 3.1 GB; files
// of this kind are read up to 256 MB", the system's reason).
std::optional<QByteArray> readUserFile(const QString& path, qint64 maxBytes, QString& error);

}  // namespace lumen::app
