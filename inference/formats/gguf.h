#pragma once
// GGUF, the model file format of llama.cpp (versions 2 and 3; little-endian):
//
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data (each offset aligned, relative
//   to the start of the data section)
//
// string = u64 length + bytes (no terminator). value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32,
// 5 i32, 6 f32, 7 bool, 8 string, 9 array (u32 element type, u64 count, elements), 10 u64,
// 11 i64, 12 f64. ne[0] is the fastest-varying dimension (a row), as in ggml.
//
// The file is memory-mapped and tensors are views into it. Every size and offset is checked
// before use; a bad file raises FormatError naming the file, the item and the problem.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inference/core/tensor.h"
#include "inference/formats/dtype.h"
#include "inference/formats/format_error.h"
#include "inference/formats/mapped_file.h"

namespace lumen::inference {

enum class GgufType : std::uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view ggufTypeName(GgufType type);

inline constexpr std::uint32_t kGgufDefaultAlignment = 32;

// A metadata value as read: scalars by value, strings and numeric arrays as views into the file.
struct GgufValue {
    GgufType type = GgufType::U8;
    std::uint64_t u = 0;  // unsigned integers and bool
    std::int64_t i = 0;   // signed integers
    double f = 0.0;       // floats
    std::string_view s;   // strings
    // Arrays:
    GgufType elementType = GgufType::U8;
    std::uint64_t count = 0;
    std::span<const std::uint8_t> raw;     // numeric and bool elements, packed little-endian
    std::vector<std::string_view> strings; // string elements
    std::vector<GgufValue> items;          // array elements

    bool isInteger() const;
    bool isFloat() const { return type == GgufType::F32 || type == GgufType::F64; }
    // Integer or float as double (for display); 0 for other types.
    double asNumber() const;
    // Element `index` of a numeric array as double.
    double numberAt(std::uint64_t index) const;
};

struct GgufTensor {
    std::string_view name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;  // ne: shape[0] is a row
    std::uint64_t offset = 0;         // from the start of the data section
    std::int64_t elements = 0;
    std::int64_t bytes = 0;
    std::span<const std::uint8_t> data;
};

class GgufFile {
public:
    // Maps and parses the file. Throws FormatError.
    static GgufFile open(const std::filesystem::path& path);
    // Parses bytes the caller keeps alive (tests and fuzzing); `displayName` appears in errors.
    static GgufFile parse(std::span<const std::uint8_t> bytes, std::string displayName);

    const std::string& displayName() const { return name_; }
    std::uint32_t version() const { return version_; }
    std::uint32_t alignment() const { return alignment_; }
    std::uint64_t dataOffset() const { return dataOffset_; }
    std::uint64_t fileSize() const { return bytes_.size(); }

    // Metadata in file order.
    const std::vector<std::pair<std::string_view, GgufValue>>& metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;
    bool contains(std::string_view key) const { return find(key) != nullptr; }

    // Typed accessors: FormatError when the key is missing or has another type.
    std::string getString(std::string_view key) const;
    std::int64_t getInt(std::string_view key) const;  // any integer type that fits int64
    double getFloat(std::string_view key) const;      // f32 or f64
    bool getBool(std::string_view key) const;
    const GgufValue& getArray(std::string_view key) const;
    std::span<const std::string_view> getStringArray(std::string_view key) const;
    std::vector<float> getFloatArray(std::string_view key) const;
    std::vector<std::int64_t> getIntArray(std::string_view key) const;
    // The same, with a fallback when the key is absent (still FormatError on a wrong type).
    std::string getString(std::string_view key, std::string_view fallback) const;
    std::int64_t getInt(std::string_view key, std::int64_t fallback) const;
    double getFloat(std::string_view key, double fallback) const;
    bool getBool(std::string_view key, bool fallback) const;

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* findTensor(std::string_view name) const;
    // The mapped file was truncated or written over since it was opened (MappedFile).
    bool changedOnDisk() const { return file_ && file_->changedOnDisk(); }
    const GgufTensor& tensor(std::string_view name) const;  // FormatError when absent

private:
    GgufFile() = default;
    void parseAll();
    [[noreturn]] void keyError(std::string_view key, const std::string& problem) const;
    const GgufValue& require(std::string_view key, const char* expected) const;

    std::shared_ptr<MappedFile> file_;
    std::span<const std::uint8_t> bytes_;
    std::string name_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = kGgufDefaultAlignment;
    std::uint64_t dataOffset_ = 0;
    std::vector<std::pair<std::string_view, GgufValue>> metadata_;
    std::unordered_map<std::string_view, std::size_t> keyIndex_;
    std::vector<GgufTensor> tensors_;
    std::unordered_map<std::string_view, std::size_t> tensorIndex_;
};

// A metadata value to write (owning its data).
struct GgufWriteValue {
    GgufType type = GgufType::U8;
    std::uint64_t u = 0;
    std::int64_t i = 0;
    double f = 0.0;
    std::string s;
    GgufType elementType = GgufType::U8;
    std::vector<GgufWriteValue> items;

    static GgufWriteValue u8(std::uint8_t v) { return scalarU(GgufType::U8, v); }
    static GgufWriteValue u16(std::uint16_t v) { return scalarU(GgufType::U16, v); }
    static GgufWriteValue u32(std::uint32_t v) { return scalarU(GgufType::U32, v); }
    static GgufWriteValue u64(std::uint64_t v) { return scalarU(GgufType::U64, v); }
    static GgufWriteValue i8(std::int8_t v) { return scalarI(GgufType::I8, v); }
    static GgufWriteValue i16(std::int16_t v) { return scalarI(GgufType::I16, v); }
    static GgufWriteValue i32(std::int32_t v) { return scalarI(GgufType::I32, v); }
    static GgufWriteValue i64(std::int64_t v) { return scalarI(GgufType::I64, v); }
    static GgufWriteValue f32(float v) { return scalarF(GgufType::F32, v); }
    static GgufWriteValue f64(double v) { return scalarF(GgufType::F64, v); }
    static GgufWriteValue boolean(bool v) { return scalarU(GgufType::Bool, v ? 1 : 0); }
    static GgufWriteValue string(std::string v);
    // An array of `elementType`; every item must have that type.
    static GgufWriteValue array(GgufType elementType, std::vector<GgufWriteValue> items);
    static GgufWriteValue stringArray(const std::vector<std::string>& values);
    static GgufWriteValue f32Array(const std::vector<float>& values);
    static GgufWriteValue i32Array(const std::vector<std::int32_t>& values);

private:
    static GgufWriteValue scalarU(GgufType t, std::uint64_t v);
    static GgufWriteValue scalarI(GgufType t, std::int64_t v);
    static GgufWriteValue scalarF(GgufType t, double v);
};

// Writes GGUF v3 files as llama.cpp's tools do: metadata in insertion order, tensor data
// aligned (32 by default; a different alignment is recorded in general.alignment), the file
// padded to the alignment after each tensor.
class GgufWriter {
public:
    void set(std::string key, GgufWriteValue value);  // replaces an existing key in place
    void setAlignment(std::uint32_t alignment);       // a power of two
    // The data must stay alive until write(); it must be byteSize(dtype, elements) bytes.
    void addTensor(std::string name, DType dtype, std::vector<std::int64_t> shape,
                   std::span<const std::uint8_t> data);

    void write(const std::filesystem::path& path) const;  // throws FormatError on I/O errors
    std::vector<std::uint8_t> toBytes() const;

private:
    struct Tensor {
        std::string name;
        DType dtype;
        std::vector<std::int64_t> shape;
        std::span<const std::uint8_t> data;
    };
    template <typename Sink>
    void writeTo(Sink& sink) const;

    std::vector<std::pair<std::string, GgufWriteValue>> metadata_;
    std::vector<Tensor> tensors_;
    std::uint32_t alignment_ = kGgufDefaultAlignment;
};

// A tensor of the file as a weight view. FormatError naming the file and tensor when it is
// missing (unless optional: then an absent Tensor) or its shape (ne, trailing 1s dropped) is not
// `expected`.
Tensor tensorView(const GgufFile& f, const std::string& name, std::vector<std::int64_t> expected, bool optional = false);

}  // namespace lumen::inference
