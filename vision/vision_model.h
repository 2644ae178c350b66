#pragma once
// What the classifiers and the app need of an image encoder, whichever it is (CLIP, DINOv2), and
// opening a Hugging Face model folder as the right one.
//
// A folder: config.json ("model_type": "clip", "clip_vision_model", "dinov2" or
// "dinov2_with_registers"), model.safetensors (or shards with model.safetensors.index.json),
// preprocessor_config.json, and for CLIP's text side vocab.json + merges.txt (or the original
// bpe_simple_vocab_16e6.txt.gz).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/safetensors.h"
#include "vision/preprocess.h"

namespace lumen::vision {

class ImageEncoder {
public:
    virtual ~ImageEncoder() = default;
    // "CLIP ViT-B/32 (12 layers, 768 wide)"
    virtual std::string description() const = 0;
    virtual const PreprocessConfig& preprocessConfig() const = 0;
    // The image's feature vector (not normalized): CLIP's projected embedding; DINOv2's class
    // token beside the mean of its patch tokens (the features DINOv2's linear probes read).
    virtual std::vector<float> embedImage(const PixelTensor& pixels) = 0;
    virtual std::int64_t embeddingSize() const = 0;
    std::vector<float> embedImage(const RgbImage& image) { return embedImage(preprocess(image, preprocessConfig())); }
};

// config.json of a folder, parsed (FormatError naming the file when absent or not JSON).
nlohmann::json readConfigJson(const std::filesystem::path& folder);

// Opens a CLIP or DINOv2 folder on `backend` (which must outlive the encoder).
std::unique_ptr<ImageEncoder> openImageEncoder(const std::filesystem::path& folder, inference::Backend& backend);

// Config helpers: a number from a JSON object, `fallback` when absent; FormatError when present
// but not a number in [low, high].
std::int64_t configInt(const nlohmann::json& j, const char* key, std::int64_t fallback, std::int64_t low, std::int64_t high, const std::string& file);
double configNumber(const nlohmann::json& j, const char* key, double fallback, const std::string& file);
// Throws std::runtime_error when the model's weight files changed on disk while mapped (their
// reads then gave zeros: the result is garbage), asking for the model to be loaded again.
void requireUnchanged(const inference::SafetensorsModel& weights);
// The same for a string and a true/false value (not nlohmann's raw type errors).
std::string configString(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& file);
bool configBool(const nlohmann::json& j, const char* key, bool fallback, const std::string& file);
inference::GeluKind activation(const nlohmann::json& j, const char* key, const char* fallback, const std::string& file);

}  // namespace lumen::vision
