#pragma once
// safetensors, Hugging Face's weight format:
//
//   u64 header_length (little-endian) | header: JSON object, header_length bytes | data
//   header = { "__metadata__"?: {str: str},
//              name: {"dtype": "F32"|"F16"|"BF16"|..., "shape": [int...],
//                     "data_offsets": [begin, end]} ... }   offsets relative to the data start
//
// Shapes are in PyTorch order (the last dimension varies fastest). A model folder holds either
// model.safetensors or shards listed in model.safetensors.index.json ({"weight_map": {tensor:
// file}}). Files are memory-mapped; tensors are views. Lumen computes with F32, F16 and BF16;
// other dtypes (e.g. the I64 position_ids some checkpoints carry) are listed but not converted.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "inference/formats/dtype.h"
#include "inference/formats/format_error.h"
#include "inference/formats/mapped_file.h"

namespace lumen::inference {

struct SafetensorsTensor {
    std::string name;
    std::string dtypeName;       // as in the file: "F32", "BF16", "I64", ...
    std::optional<DType> dtype;  // set for F32, F16 and BF16
    std::vector<std::int64_t> shape;
    std::int64_t elements = 0;
    std::span<const std::uint8_t> data;
    std::string file;  // the file it lives in (shards)
};

class SafetensorsModel {
public:
    // A .safetensors file, or a folder with model.safetensors or model.safetensors.index.json.
    static SafetensorsModel open(const std::filesystem::path& path);
    // One file's bytes, kept alive by the caller (tests and fuzzing).
    static SafetensorsModel parse(std::span<const std::uint8_t> bytes, std::string displayName);

    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const SafetensorsTensor* find(std::string_view name) const;
    const SafetensorsTensor& tensor(std::string_view name) const;  // FormatError when absent
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::vector<std::string>& files() const { return files_; }
    // A mapped file was truncated or written over since it was opened (MappedFile).
    bool changedOnDisk() const {
        for (const auto& m : maps_)
            if (m->changedOnDisk()) return true;
        return false;
    }

private:
    void addFile(std::span<const std::uint8_t> bytes, const std::string& displayName);
    std::vector<std::shared_ptr<MappedFile>> maps_;
    std::vector<SafetensorsTensor> tensors_;
    std::unordered_map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
    std::vector<std::string> files_;
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
int safetensorsElementSize(std::string_view dtype);

}  // namespace lumen::inference
