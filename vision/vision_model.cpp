#include "vision/vision_model.h"

#include <fstream>
#include <sstream>

#include "inference/formats/format_error.h"
#include "inference/formats/text.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"

namespace lumen::vision {

using inference::FormatError;

nlohmann::json readConfigJson(const std::filesystem::path& folder) {
    const auto file = folder / "config.json";
    std::ifstream in(file, std::ios::binary);
    if (!in) throw FormatError(file.string() + ": cannot be read (a Hugging Face model folder has a config.json)");
    std::stringstream text;
    text << in.rdbuf();
    if (inference::jsonNestingDepth(text.str()) > inference::kMaxJsonDepth)
        throw FormatError(file.string() + ": nests deeper than " + std::to_string(inference::kMaxJsonDepth) + " levels");
    try {
        nlohmann::json j = nlohmann::json::parse(text.str());
        if (!j.is_object()) throw FormatError(file.string() + ": not a JSON object");
        return j;
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(file.string() + ": not valid JSON (" + e.what() + ")");
    }
}

std::int64_t configInt(const nlohmann::json& j, const char* key, std::int64_t fallback, std::int64_t low, std::int64_t high, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number_integer() || it->get<std::int64_t>() < low || it->get<std::int64_t>() > high)
        throw FormatError(file + ": \"" + key + "\" must be a whole number from " + std::to_string(low) + " to " + std::to_string(high));
    return it->get<std::int64_t>();
}

double configNumber(const nlohmann::json& j, const char* key, double fallback, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw FormatError(file + ": \"" + key + "\" must be a number");
    return it->get<double>();
}

void requireUnchanged(const inference::SafetensorsModel& weights) {
    if (weights.changedOnDisk())
        throw std::runtime_error((weights.files().empty() ? std::string("the model's weights") : weights.files().front()) +
                                 " changed on disk while in use (another program wrote over it): load the model again");
}

std::string configString(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_string()) throw FormatError(file + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
}

bool configBool(const nlohmann::json& j, const char* key, bool fallback, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw FormatError(file + ": \"" + key + "\" must be true or false");
    return it->get<bool>();
}

inference::GeluKind activation(const nlohmann::json& j, const char* key, const char* fallback, const std::string& file) {
    const auto it = j.find(key);
    const std::string name = it == j.end() || it->is_null() ? fallback : it->is_string() ? it->get<std::string>() : "";
    if (name == "quick_gelu") return inference::GeluKind::Quick;
    if (name == "gelu") return inference::GeluKind::Erf;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return inference::GeluKind::Tanh;
    throw FormatError(file + ": activation \"" + name + "\" is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh are)");
}

std::unique_ptr<ImageEncoder> openImageEncoder(const std::filesystem::path& folder, inference::Backend& backend) {
    const nlohmann::json config = readConfigJson(folder);
    const std::string type = configString(config, "model_type", "", (folder / "config.json").string());
    if (type == "clip" || type == "clip_vision_model") return ClipModel::load(folder, backend);
    if (type == "dinov2" || type == "dinov2_with_registers") return Dinov2Model::load(folder, backend);
    throw FormatError((folder / "config.json").string() + ": model_type \"" + type +
                      "\" is not an image encoder Lumen reads (clip, clip_vision_model, dinov2, dinov2_with_registers)");
}

}  // namespace lumen::vision
