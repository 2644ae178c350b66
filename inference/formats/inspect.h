#pragma once
// What `lumen-cli inspect` prints about a model file or folder, and the tensor dump it offers
// for checking a file against another tool.

#include <filesystem>
#include <ostream>
#include <string>

namespace lumen::inference {

struct InspectOptions {
    bool showMetadata = true;
    bool showTensors = true;
    int arrayPreview = 8;  // elements of a long array to show
};

// Writes a readable report: format, metadata, tensor table, parameter count and, for an LLM
// GGUF, the architecture summary. Throws FormatError for files it cannot read.
void inspectModel(const std::filesystem::path& path, std::ostream& out, const InspectOptions& options = {});

class GgufFile;
// One line about a llama.cpp mmproj file (general.architecture "clip"): the vision tower, the
// projector and the width of LLM it fits.
std::string mmprojSummary(const GgufFile& file);

// Writes tensor `name` of the model at `path` dequantized to float32 (raw little-endian, in
// the order the file stores its elements) to `output`; returns the number of elements.
std::int64_t dumpTensorF32(const std::filesystem::path& path, const std::string& name,
                           const std::filesystem::path& output);

}  // namespace lumen::inference
