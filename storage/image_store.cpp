#include "storage/image_store.h"

#include "storage/clock.h"
#include "storage/sha256.h"

namespace lumen::storage {

std::string ImageStore::put(const NewImage& image) {
    if (image.width < 0 || image.height < 0) throw Error("image size cannot be negative");
    const std::string sha = sha256Hex(image.bytes);
    Statement s = c_.prepare(
        "INSERT INTO images(sha256, mime_type, width, height, byte_size, bytes, thumbnail, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING");
    s.bindAll(sha, image.mimeType, image.width, image.height,
              static_cast<std::int64_t>(image.bytes.size()));
    s.bindBlob(6, image.bytes);
    if (image.thumbnail.empty())
        s.bindNull(7);
    else
        s.bindBlob(7, image.thumbnail);
    s.bind(8, nowMs());
    s.run();
    return sha;
}

bool ImageStore::contains(std::string_view sha256) {
    Statement s = c_.prepare("SELECT 1 FROM images WHERE sha256 = ?");
    s.bind(1, sha256);
    return s.step();
}

std::optional<ImageInfo> ImageStore::info(std::string_view sha256) {
    Statement s = c_.prepare(
        "SELECT sha256, mime_type, width, height, byte_size, created_at FROM images WHERE sha256 = ?");
    s.bind(1, sha256);
    if (!s.step()) return std::nullopt;
    return ImageInfo{s.getText(0), s.getText(1), static_cast<int>(s.getInt(2)),
                     static_cast<int>(s.getInt(3)), s.getInt(4), s.getInt(5)};
}

std::optional<Bytes> ImageStore::bytes(std::string_view sha256) {
    Statement s = c_.prepare("SELECT bytes FROM images WHERE sha256 = ?");
    s.bind(1, sha256);
    if (!s.step()) return std::nullopt;
    return s.getBlob(0);
}

std::optional<Bytes> ImageStore::thumbnail(std::string_view sha256) {
    Statement s = c_.prepare("SELECT thumbnail FROM images WHERE sha256 = ?");
    s.bind(1, sha256);
    if (!s.step() || s.isNull(0)) return std::nullopt;
    return s.getBlob(0);
}

void ImageStore::attach(std::int64_t messageId, std::string_view sha256) {
    if (!contains(sha256)) throw Error("image " + std::string(sha256) + " is not in the image store");
    c_.prepare(
          "INSERT INTO message_images(message_id, position, image_sha256) VALUES "
          "(?1, (SELECT coalesce(max(position) + 1, 0) FROM message_images WHERE message_id = ?1), ?2)")
        .bindAll(messageId, sha256)
        .run();
}

std::vector<std::string> ImageStore::attachments(std::int64_t messageId) {
    Statement s = c_.prepare(
        "SELECT image_sha256 FROM message_images WHERE message_id = ? ORDER BY position");
    s.bind(1, messageId);
    std::vector<std::string> result;
    while (s.step()) result.push_back(s.getText(0));
    return result;
}

int ImageStore::pruneUnreferenced() {
    c_.exec(
        "DELETE FROM images WHERE sha256 NOT IN (SELECT image_sha256 FROM message_images) "
        "AND sha256 NOT IN (SELECT image_sha256 FROM template_examples WHERE image_sha256 IS NOT NULL) "
        "AND sha256 NOT IN (SELECT image_sha256 FROM label_examples)");
    return c_.changes();
}

}  // namespace lumen::storage
