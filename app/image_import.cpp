#include "app/image_import.h"

#include <QBuffer>
#include <QFile>
#include <QFileInfo>
#include <QImage>

#include "app/read_file.h"
#include "vision/image_decode.h"
#include "vision/preprocess.h"

namespace lumen::app {

ImportedImage importImage(Library& library, const QByteArray& bytes, const QString& name) {
    ImportedImage out;
    const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size()));
    try {
        const vision::RgbImage image = vision::decodeImage(data, {.neededSide = kThumbnailSize});  // (only the thumbnail is made here)
        // The thumbnail: the longest side to kThumbnailSize at most, as PNG.
        const double scale = std::min(1.0, static_cast<double>(kThumbnailSize) / std::max(image.width, image.height));
        const int tw = std::max(1, static_cast<int>(image.width * scale)), th = std::max(1, static_cast<int>(image.height * scale));
        const vision::RgbImage small = vision::resizeLikePil(image, tw, th, vision::Resample::Bicubic);
        QImage thumb(small.pixels.data(), small.width, small.height, small.width * 3, QImage::Format_RGB888);
        QByteArray png;
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        thumb.save(&buffer, "PNG");
        storage::NewImage n;
        n.bytes = data;
        n.mimeType = vision::sniffImageType(data);
        n.width = image.width;
        n.height = image.height;
        n.thumbnail = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(png.constData()), static_cast<std::size_t>(png.size()));
        out.sha256 = library.images().put(n);
    } catch (const vision::ImageError& e) {
        out.error = QObject::tr("%1: %2").arg(name, QString::fromUtf8(e.what()));
    } catch (const storage::Error& e) {
        out.error = QObject::tr("%1 could not be stored: %2").arg(name, QString::fromUtf8(e.what()));
    }
    return out;
}

ImportedImage importImageFile(Library& library, const QString& path) {
    QString error;
    const auto bytes = readUserFile(path, kMaxImageFileBytes, error);
    if (!bytes) return {{}, QObject::tr("%1: %2").arg(QFileInfo(path).fileName(), error)};
    return importImage(library, *bytes, QFileInfo(path).fileName());
}

}  // namespace lumen::app
