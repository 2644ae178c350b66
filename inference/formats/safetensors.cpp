#include "inference/formats/safetensors.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "inference/formats/text.h"

namespace lumen::inference {
namespace {

using Json = nlohmann::json;

// The reference implementation's limit on the JSON header.
constexpr std::uint64_t kMaxHeader = 100ull << 20;

[[noreturn]] void fail(const std::string& file, const std::string& problem) { throw FormatError(file + ": " + problem); }

Json parseJson(std::string_view text, const std::string& file, const char* what) {
    if (jsonNestingDepth(text) > kMaxJsonDepth) fail(file, std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    try {
        return Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
        fail(file, std::string(what) + " is not valid JSON (" + e.what() + ")");
    }
}

std::vector<std::uint8_t> readWholeFile(const std::filesystem::path& path) {
    MappedFile f(path);
    return {f.bytes().begin(), f.bytes().end()};
}

}  // namespace

int safetensorsElementSize(std::string_view dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
    return 0;
}

void SafetensorsModel::addFile(std::span<const std::uint8_t> bytes, const std::string& file) {
    if (bytes.size() < 8) fail(file, "not a safetensors file (shorter than its 8-byte header length)");
    std::uint64_t headerLength;
    std::memcpy(&headerLength, bytes.data(), 8);
    if (headerLength > kMaxHeader) fail(file, "header length " + std::to_string(headerLength) + " is over the 100 MiB limit");
    if (headerLength > bytes.size() - 8)
        fail(file, "header length " + std::to_string(headerLength) + " is larger than the file (" + std::to_string(bytes.size()) + " bytes)");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(headerLength));
    const Json header = parseJson(text, file, "the header");
    if (!header.is_object()) fail(file, "the header is not a JSON object");
    const auto data = bytes.subspan(8 + static_cast<std::size_t>(headerLength));

    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) fail(file, "__metadata__ is not an object");
            for (const auto& [k, v] : entry.items()) {
                if (!v.is_string()) fail(file, "__metadata__ '" + k + "' is not a string");
                metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        const std::string what = "tensor '" + name + "'";
        if (!isValidUtf8(name)) fail(file, "a tensor name is not valid UTF-8");
        if (!entry.is_object()) fail(file, what + ": entry is not an object");
        const auto dtypeIt = entry.find("dtype");
        const auto shapeIt = entry.find("shape");
        const auto offsetsIt = entry.find("data_offsets");
        if (dtypeIt == entry.end() || !dtypeIt->is_string()) fail(file, what + ": \"dtype\" is missing or not a string");
        if (shapeIt == entry.end() || !shapeIt->is_array()) fail(file, what + ": \"shape\" is missing or not an array");
        if (offsetsIt == entry.end() || !offsetsIt->is_array() || offsetsIt->size() != 2)
            fail(file, what + ": \"data_offsets\" must be [begin, end]");

        SafetensorsTensor t;
        t.name = name;
        t.file = file;
        t.dtypeName = dtypeIt->get<std::string>();
        const int elementSize = safetensorsElementSize(t.dtypeName);
        if (elementSize == 0) fail(file, what + ": unknown dtype \"" + t.dtypeName + "\"");
        if (t.dtypeName == "F32") t.dtype = DType::F32;
        if (t.dtypeName == "F16") t.dtype = DType::F16;
        if (t.dtypeName == "BF16") t.dtype = DType::BF16;
        if (shapeIt->size() > 8) fail(file, what + ": " + std::to_string(shapeIt->size()) + " dimensions is too many");
        t.elements = 1;
        for (const Json& d : *shapeIt) {
            if (!d.is_number_unsigned()) fail(file, what + ": shape entries must be non-negative integers");
            const auto n = d.get<std::uint64_t>();
            if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
                (n != 0 && t.elements > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(n)))
                fail(file, what + ": the shape's element count overflows");
            t.elements *= static_cast<std::int64_t>(n);
            t.shape.push_back(static_cast<std::int64_t>(n));
        }
        const Json& begin = (*offsetsIt)[0];
        const Json& end = (*offsetsIt)[1];
        if (!begin.is_number_unsigned() || !end.is_number_unsigned())
            fail(file, what + ": data offsets must be non-negative integers");
        const auto b = begin.get<std::uint64_t>(), e = end.get<std::uint64_t>();
        if (b > e) fail(file, what + ": data offsets run backwards (" + std::to_string(b) + " > " + std::to_string(e) + ")");
        if (e > data.size())
            fail(file, what + ": data runs past the end of the file (ends at " + std::to_string(e) + " of " +
                           std::to_string(data.size()) + " data bytes)");
        if (static_cast<std::uint64_t>(t.elements) > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(elementSize) ||
            e - b != static_cast<std::uint64_t>(t.elements) * static_cast<std::uint64_t>(elementSize))
            fail(file, what + ": " + std::to_string(e - b) + " data bytes do not match its shape and dtype");
        t.data = data.subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b));
        if (!index_.emplace(t.name, tensors_.size()).second) fail(file, what + ": appears in more than one file");
        tensors_.push_back(std::move(t));
    }
    files_.push_back(file);
}

SafetensorsModel SafetensorsModel::parse(std::span<const std::uint8_t> bytes, std::string displayName) {
    SafetensorsModel m;
    m.addFile(bytes, displayName);
    return m;
}

SafetensorsModel SafetensorsModel::open(const std::filesystem::path& path) {
    SafetensorsModel m;
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
        m.maps_.push_back(std::make_shared<MappedFile>(path));
        m.addFile(m.maps_.back()->bytes(), path.string());
        return m;
    }
    const auto indexPath = path / "model.safetensors.index.json";
    if (!std::filesystem::exists(indexPath, ec)) {
        const auto single = path / "model.safetensors";
        if (!std::filesystem::exists(single, ec))
            fail(path.string(), "no model.safetensors or model.safetensors.index.json in this folder");
        m.maps_.push_back(std::make_shared<MappedFile>(single));
        m.addFile(m.maps_.back()->bytes(), single.string());
        return m;
    }
    const auto indexBytes = readWholeFile(indexPath);
    const Json index = parseJson(std::string_view(reinterpret_cast<const char*>(indexBytes.data()), indexBytes.size()),
                                 indexPath.string(), "the index");
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail(indexPath.string(), "has no \"weight_map\" object");
    std::map<std::string, std::vector<std::string>> shards;  // file -> tensors it must hold
    for (const auto& [tensorName, file] : index["weight_map"].items()) {
        if (!file.is_string()) fail(indexPath.string(), "weight_map entry '" + tensorName + "' is not a file name");
        const auto shard = file.get<std::string>();
        if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos || shard == "." ||
            shard == "..")
            fail(indexPath.string(), "shard name '" + shard + "' must be a plain file name in the model folder");
        shards[shard].push_back(tensorName);
    }
    for (const auto& [shard, names] : shards) {
        const auto shardPath = path / shard;
        m.maps_.push_back(std::make_shared<MappedFile>(shardPath));
        m.addFile(m.maps_.back()->bytes(), shardPath.string());
        for (const auto& n : names)
            if (!m.find(n)) fail(shardPath.string(), "tensor '" + n + "' listed in the index is not in this shard");
    }
    return m;
}

const SafetensorsTensor* SafetensorsModel::find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsModel::tensor(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (!t) throw FormatError((files_.empty() ? std::string("model") : files_.front()) + ": tensor '" + std::string(name) + "' is missing");
    return *t;
}

}  // namespace lumen::inference
