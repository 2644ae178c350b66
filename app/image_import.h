#pragma once
// Images the user drops, pastes or attaches: decoded once to check them (a clear error for
// anything that is not a readable image), given a PNG thumbnail, and stored once by content hash.

#include <QByteArray>
#include <QString>
#include <string>

#include "app/library.h"

namespace lumen::app {

struct ImportedImage {
    std::string sha256;  // empty on error
    QString error;       // what went wrong, for the user
};

// `name` (a file name, or "pasted image") is only used in the error message.
ImportedImage importImage(Library& library, const QByteArray& bytes, const QString& name);
ImportedImage importImageFile(Library& library, const QString& path);

// The longest side of stored thumbnails, in pixels.
inline constexpr int kThumbnailSize = 256;

}  // namespace lumen::app
