#pragma once
// Images, stored once each and addressed by the SHA-256 of their file bytes. The caller (which
// can decode images) supplies the MIME type, size and thumbnail; storage only keeps bytes.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/database.h"

namespace lumen::storage {

struct ImageInfo {
    std::string sha256;
    std::string mimeType;
    int width = 0;
    int height = 0;
    std::int64_t byteSize = 0;
    std::int64_t createdAt = 0;
};

struct NewImage {
    std::span<const std::uint8_t> bytes;
    std::string mimeType;
    int width = 0;
    int height = 0;
    std::span<const std::uint8_t> thumbnail;  // empty: none
};

class ImageStore {
public:
    explicit ImageStore(Database& db) : c_(db.connection()) {}

    // Stores the image unless the same bytes are already stored; returns its SHA-256.
    std::string put(const NewImage& image);
    bool contains(std::string_view sha256);
    std::optional<ImageInfo> info(std::string_view sha256);
    std::optional<Bytes> bytes(std::string_view sha256);
    std::optional<Bytes> thumbnail(std::string_view sha256);
    // Appends an image to a message's attachments.
    void attach(std::int64_t messageId, std::string_view sha256);
    std::vector<std::string> attachments(std::int64_t messageId);
    // Deletes images that no message, few-shot example or labelled example uses; returns how many.
    int pruneUnreferenced();

private:
    Connection& c_;
};

}  // namespace lumen::storage
