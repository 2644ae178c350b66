#include "inference/formats/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "inference/formats/text.h"

namespace lumen::inference {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;

// Names for ggml types Lumen does not read, so the error says what the file holds.
std::string ggmlTypeName(std::uint32_t id) {
    static const std::map<std::uint32_t, const char*> kNames = {
        {9, "Q8_1"},     {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"},
        {20, "IQ4_NL"},  {21, "IQ3_S"},  {22, "IQ2_S"},   {23, "IQ4_XS"}, {24, "I8"},      {25, "I16"},
        {26, "I32"},     {27, "I64"},    {28, "F64"},     {29, "IQ1_M"},  {34, "TQ1_0"},   {35, "TQ2_0"},
        {39, "MXFP4"}};
    const auto it = kNames.find(id);
    return it != kNames.end() ? std::string(it->second) : "number " + std::to_string(id);
}

std::size_t scalarSize(GgufType t) {
    switch (t) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::Bool: return 1;
        case GgufType::U16:
        case GgufType::I16: return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32: return 4;
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::F64: return 8;
        default: return 0;
    }
}

bool validType(std::uint32_t t) { return t <= static_cast<std::uint32_t>(GgufType::F64); }

// Reads the header with bounds checks; every error names the file and what was being read.
class Parser {
public:
    Parser(std::span<const std::uint8_t> bytes, const std::string& name) : b_(bytes), name_(name) {}

    [[noreturn]] void fail(const std::string& problem) const { throw FormatError(name_ + ": " + problem); }

    std::size_t pos() const { return pos_; }
    std::size_t remaining() const { return b_.size() - pos_; }

    void need(std::uint64_t n, const std::string& what) const {
        if (n > remaining())
            fail(what + ": the file ends early (needs " + std::to_string(n) + " bytes at offset " +
                 std::to_string(pos_) + ", file is " + std::to_string(b_.size()) + " bytes)");
    }

    template <typename T>
    T read(const std::string& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string_view readString(const std::string& what) {
        const auto length = read<std::uint64_t>(what + " (string length)");
        need(length, what + " (string of " + std::to_string(length) + " bytes)");
        const std::string_view s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(length));
        pos_ += static_cast<std::size_t>(length);
        return s;
    }

    std::span<const std::uint8_t> take(std::uint64_t n, const std::string& what) {
        need(n, what);
        const auto s = b_.subspan(pos_, static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        return s;
    }

    GgufValue readValue(GgufType type, const std::string& what, int depth) {
        GgufValue v;
        v.type = type;
        switch (type) {
            case GgufType::U8: v.u = read<std::uint8_t>(what); break;
            case GgufType::I8: v.i = read<std::int8_t>(what); break;
            case GgufType::U16: v.u = read<std::uint16_t>(what); break;
            case GgufType::I16: v.i = read<std::int16_t>(what); break;
            case GgufType::U32: v.u = read<std::uint32_t>(what); break;
            case GgufType::I32: v.i = read<std::int32_t>(what); break;
            case GgufType::U64: v.u = read<std::uint64_t>(what); break;
            case GgufType::I64: v.i = read<std::int64_t>(what); break;
            case GgufType::F32: v.f = read<float>(what); break;
            case GgufType::F64: v.f = read<double>(what); break;
            case GgufType::Bool: {
                const auto b = read<std::uint8_t>(what);
                if (b > 1) fail(what + ": boolean value " + std::to_string(b) + " is neither 0 nor 1");
                v.u = b;
                break;
            }
            case GgufType::String: v.s = readString(what); break;
            case GgufType::Array: readArray(v, what, depth); break;
        }
        return v;
    }

private:
    void readArray(GgufValue& v, const std::string& what, int depth) {
        if (depth >= kMaxArrayDepth) fail(what + ": arrays nested more than " + std::to_string(kMaxArrayDepth) + " deep");
        const auto elementType = read<std::uint32_t>(what + " (array element type)");
        if (!validType(elementType)) fail(what + ": unknown array element type " + std::to_string(elementType));
        v.elementType = static_cast<GgufType>(elementType);
        v.count = read<std::uint64_t>(what + " (array length)");
        // Each element takes at least this many bytes, so the count is checked against what is
        // left before anything is allocated from it.
        const std::size_t minSize = v.elementType == GgufType::String  ? 8
                                    : v.elementType == GgufType::Array ? 12
                                                                       : scalarSize(v.elementType);
        if (v.count > remaining() / minSize)
            fail(what + ": array of " + std::to_string(v.count) + " " + std::string(ggufTypeName(v.elementType)) +
                 " elements does not fit in the rest of the file");
        if (v.elementType == GgufType::String) {
            // The hot loop of a vocabulary: the error context is built only when an element fails.
            v.strings.reserve(static_cast<std::size_t>(v.count));
            for (std::uint64_t k = 0; k < v.count; ++k) {
                std::uint64_t length = 0;
                if (remaining() >= 8) std::memcpy(&length, b_.data() + pos_, 8);
                if (remaining() < 8 || length > remaining() - 8) {
                    v.strings.push_back(readString(what + "[" + std::to_string(k) + "]"));  // throws with context
                    continue;
                }
                v.strings.emplace_back(reinterpret_cast<const char*>(b_.data() + pos_ + 8), static_cast<std::size_t>(length));
                pos_ += 8 + static_cast<std::size_t>(length);
            }
        } else if (v.elementType == GgufType::Array) {
            v.items.reserve(static_cast<std::size_t>(v.count));
            for (std::uint64_t k = 0; k < v.count; ++k)
                v.items.push_back(readValue(GgufType::Array, what + "[" + std::to_string(k) + "]", depth + 1));
        } else {
            v.raw = take(v.count * minSize, what + " (array data)");
            if (v.elementType == GgufType::Bool)
                for (std::uint8_t b : v.raw)
                    if (b > 1) fail(what + ": boolean array element " + std::to_string(b) + " is neither 0 nor 1");
        }
    }

    std::span<const std::uint8_t> b_;
    const std::string& name_;
    std::size_t pos_ = 0;
};

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string humanBytes(std::uint64_t n) {
    std::ostringstream out;
    out.precision(3);
    if (n >= (1ull << 30)) out << static_cast<double>(n) / (1ull << 30) << " GiB";
    else if (n >= (1ull << 20)) out << static_cast<double>(n) / (1ull << 20) << " MiB";
    else out << n << " bytes";
    return out.str();
}

}  // namespace

std::string_view ggufTypeName(GgufType type) {
    switch (type) {
        case GgufType::U8: return "u8";
        case GgufType::I8: return "i8";
        case GgufType::U16: return "u16";
        case GgufType::I16: return "i16";
        case GgufType::U32: return "u32";
        case GgufType::I32: return "i32";
        case GgufType::F32: return "f32";
        case GgufType::Bool: return "bool";
        case GgufType::String: return "string";
        case GgufType::Array: return "array";
        case GgufType::U64: return "u64";
        case GgufType::I64: return "i64";
        case GgufType::F64: return "f64";
    }
    return "?";
}

bool GgufValue::isInteger() const {
    switch (type) {
        case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
        case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
        default: return false;
    }
}

double GgufValue::asNumber() const {
    switch (type) {
        case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: case GgufType::Bool:
            return static_cast<double>(u);
        case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64: return static_cast<double>(i);
        case GgufType::F32: case GgufType::F64: return f;
        default: return 0.0;
    }
}

double GgufValue::numberAt(std::uint64_t index) const {
    const std::size_t size = scalarSize(elementType);
    if (type != GgufType::Array || size == 0 || index >= count) return 0.0;
    const std::uint8_t* p = raw.data() + index * size;
    auto load = [p](auto v) {
        std::memcpy(&v, p, sizeof v);
        return static_cast<double>(v);
    };
    switch (elementType) {
        case GgufType::U8: case GgufType::Bool: return load(std::uint8_t{});
        case GgufType::I8: return load(std::int8_t{});
        case GgufType::U16: return load(std::uint16_t{});
        case GgufType::I16: return load(std::int16_t{});
        case GgufType::U32: return load(std::uint32_t{});
        case GgufType::I32: return load(std::int32_t{});
        case GgufType::U64: return load(std::uint64_t{});
        case GgufType::I64: return load(std::int64_t{});
        case GgufType::F32: return load(float{});
        case GgufType::F64: return load(double{});
        default: return 0.0;
    }
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
    GgufFile f;
    f.file_ = std::make_shared<MappedFile>(path);
    f.bytes_ = f.file_->bytes();
    f.name_ = path.string();
    f.parseAll();
    return f;
}

GgufFile GgufFile::parse(std::span<const std::uint8_t> bytes, std::string displayName) {
    GgufFile f;
    f.bytes_ = bytes;
    f.name_ = std::move(displayName);
    f.parseAll();
    return f;
}

void GgufFile::parseAll() {
    Parser p(bytes_, name_);
    if (bytes_.size() < 4) p.fail("not a GGUF file (too short to hold the header)");
    const auto magic = p.read<std::uint32_t>("magic");
    if (magic != kMagic) p.fail("not a GGUF file (it does not start with \"GGUF\")");
    version_ = p.read<std::uint32_t>("version");
    if (version_ == 1) p.fail("GGUF version 1 is not supported (convert the model again with a current llama.cpp)");
    if (version_ != 2 && version_ != 3) {
        if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)
            p.fail("this is a big-endian GGUF file; Lumen reads little-endian GGUF only");
        p.fail("unsupported GGUF version " + std::to_string(version_) + " (Lumen reads versions 2 and 3)");
    }
    const auto tensorCount = p.read<std::uint64_t>("tensor count");
    const auto kvCount = p.read<std::uint64_t>("metadata count");
    // A key-value pair takes at least 13 bytes (8 length + 4 type + 1 value), a tensor info at
    // least 24 (8 name length + 4 dims + 4 type + 8 offset): absurd counts stop here.
    if (kvCount > p.remaining() / 13)
        p.fail("header claims " + std::to_string(kvCount) + " metadata entries, more than the file can hold");
    metadata_.reserve(static_cast<std::size_t>(kvCount));
    for (std::uint64_t k = 0; k < kvCount; ++k) {
        const std::string item = "metadata entry " + std::to_string(k);
        const std::string_view key = p.readString(item + " key");
        if (!isValidUtf8(key)) p.fail(item + ": key is not valid UTF-8");
        if (key.empty()) p.fail(item + ": key is empty");
        const std::string what = "metadata " + quoted(key);
        const auto type = p.read<std::uint32_t>(what + " (value type)");
        if (!validType(type)) p.fail(what + ": unknown value type " + std::to_string(type));
        GgufValue value = p.readValue(static_cast<GgufType>(type), what, 0);
        if (!keyIndex_.emplace(key, metadata_.size()).second) p.fail(what + ": the key appears twice");
        metadata_.emplace_back(key, std::move(value));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != GgufType::U32) p.fail("metadata 'general.alignment': must be u32, is " + std::string(ggufTypeName(a->type)));
        if (a->u == 0 || !std::has_single_bit(a->u) || a->u > (1u << 20))
            p.fail("metadata 'general.alignment': " + std::to_string(a->u) + " is not a power of two up to 1 MiB");
        alignment_ = static_cast<std::uint32_t>(a->u);
    }

    if (tensorCount > p.remaining() / 24)
        p.fail("header claims " + std::to_string(tensorCount) + " tensors, more than the file can hold");
    tensors_.reserve(static_cast<std::size_t>(tensorCount));
    for (std::uint64_t k = 0; k < tensorCount; ++k) {
        GgufTensor t;
        t.name = p.readString("tensor " + std::to_string(k) + " name");
        if (!isValidUtf8(t.name)) p.fail("tensor " + std::to_string(k) + ": name is not valid UTF-8");
        const std::string what = "tensor " + quoted(t.name);
        const auto dims = p.read<std::uint32_t>(what + " (dimension count)");
        if (dims == 0 || dims > kMaxDims)
            p.fail(what + ": " + std::to_string(dims) + " dimensions (must be 1 to " + std::to_string(kMaxDims) + ")");
        t.elements = 1;
        for (std::uint32_t d = 0; d < dims; ++d) {
            const auto ne = p.read<std::uint64_t>(what + " (shape)");
            if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                p.fail(what + ": dimension " + std::to_string(d) + " is " + std::to_string(ne) + ", too large");
            const auto n = static_cast<std::int64_t>(ne);
            if (n != 0 && t.elements > std::numeric_limits<std::int64_t>::max() / n)
                p.fail(what + ": the shape's element count overflows");
            t.elements *= n;
            t.shape.push_back(n);
        }
        const auto type = p.read<std::uint32_t>(what + " (type)");
        const auto dtype = dtypeFromGguf(type);
        if (!dtype) p.fail(what + ": tensor type " + ggmlTypeName(type) + " is not supported by Lumen");
        t.dtype = *dtype;
        if (t.shape[0] % traits(t.dtype).blockSize != 0)
            p.fail(what + ": row length " + std::to_string(t.shape[0]) + " is not a multiple of the " +
                   std::string(name(t.dtype)) + " block size " + std::to_string(traits(t.dtype).blockSize));
        const auto bytes = byteSize(t.dtype, t.elements);
        if (!bytes) p.fail(what + ": its size in bytes overflows");
        t.bytes = *bytes;
        t.offset = p.read<std::uint64_t>(what + " (data offset)");
        if (t.offset % alignment_ != 0)
            p.fail(what + ": data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                   std::to_string(alignment_));
        if (!tensorIndex_.emplace(t.name, tensors_.size()).second) p.fail(what + ": the name appears twice");
        tensors_.push_back(std::move(t));
    }

    const std::uint64_t headerEnd = p.pos();
    dataOffset_ = (headerEnd + alignment_ - 1) / alignment_ * alignment_;
    const std::uint64_t size = bytes_.size();
    const std::uint64_t dataSize = dataOffset_ <= size ? size - dataOffset_ : 0;
    for (GgufTensor& t : tensors_) {
        const auto bytes = static_cast<std::uint64_t>(t.bytes);
        if (dataOffset_ > size || t.offset > dataSize || bytes > dataSize - t.offset)
            p.fail("tensor " + quoted(t.name) + ": data runs past the end of the file (offset " +
                   humanBytes(dataOffset_ + t.offset) + " + " + humanBytes(bytes) + ", file " + humanBytes(size) + ")");
        t.data = bytes_.subspan(static_cast<std::size_t>(dataOffset_ + t.offset), static_cast<std::size_t>(bytes));
    }
    // Tensors must not share bytes.
    std::vector<const GgufTensor*> byOffset;
    for (const auto& t : tensors_) byOffset.push_back(&t);
    std::sort(byOffset.begin(), byOffset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (std::size_t k = 1; k < byOffset.size(); ++k) {
        const GgufTensor& prev = *byOffset[k - 1];
        if (prev.offset + static_cast<std::uint64_t>(prev.bytes) > byOffset[k]->offset)
            p.fail("tensor " + quoted(byOffset[k]->name) + ": its data overlaps tensor " + quoted(prev.name));
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    const auto it = keyIndex_.find(key);
    return it == keyIndex_.end() ? nullptr : &metadata_[it->second].second;
}

void GgufFile::keyError(std::string_view key, const std::string& problem) const {
    throw FormatError(name_ + ": metadata " + quoted(key) + ": " + problem);
}

const GgufValue& GgufFile::require(std::string_view key, const char* expected) const {
    const GgufValue* v = find(key);
    if (!v) keyError(key, std::string("missing (expected ") + expected + ")");
    return *v;
}

std::string GgufFile::getString(std::string_view key) const {
    const GgufValue& v = require(key, "a string");
    if (v.type != GgufType::String) keyError(key, "is " + std::string(ggufTypeName(v.type)) + ", expected a string");
    return std::string(v.s);
}

std::int64_t GgufFile::getInt(std::string_view key) const {
    const GgufValue& v = require(key, "an integer");
    if (!v.isInteger()) keyError(key, "is " + std::string(ggufTypeName(v.type)) + ", expected an integer");
    if (v.type == GgufType::U64 && v.u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        keyError(key, "value " + std::to_string(v.u) + " is too large");
    switch (v.type) {
        case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: return static_cast<std::int64_t>(v.u);
        default: return v.i;
    }
}

double GgufFile::getFloat(std::string_view key) const {
    const GgufValue& v = require(key, "a number");
    if (!v.isFloat()) keyError(key, "is " + std::string(ggufTypeName(v.type)) + ", expected f32 or f64");
    return v.f;
}

bool GgufFile::getBool(std::string_view key) const {
    const GgufValue& v = require(key, "a bool");
    if (v.type != GgufType::Bool) keyError(key, "is " + std::string(ggufTypeName(v.type)) + ", expected a bool");
    return v.u != 0;
}

const GgufValue& GgufFile::getArray(std::string_view key) const {
    const GgufValue& v = require(key, "an array");
    if (v.type != GgufType::Array) keyError(key, "is " + std::string(ggufTypeName(v.type)) + ", expected an array");
    return v;
}

std::span<const std::string_view> GgufFile::getStringArray(std::string_view key) const {
    const GgufValue& v = getArray(key);
    if (v.elementType != GgufType::String)
        keyError(key, "is an array of " + std::string(ggufTypeName(v.elementType)) + ", expected strings");
    return v.strings;
}

std::vector<float> GgufFile::getFloatArray(std::string_view key) const {
    const GgufValue& v = getArray(key);
    if (v.elementType != GgufType::F32 && v.elementType != GgufType::F64)
        keyError(key, "is an array of " + std::string(ggufTypeName(v.elementType)) + ", expected floats");
    std::vector<float> out(static_cast<std::size_t>(v.count));
    for (std::uint64_t k = 0; k < v.count; ++k) out[static_cast<std::size_t>(k)] = static_cast<float>(v.numberAt(k));
    return out;
}

std::vector<std::int64_t> GgufFile::getIntArray(std::string_view key) const {
    const GgufValue& v = getArray(key);
    GgufValue probe;
    probe.type = v.elementType;
    if (!probe.isInteger() && v.elementType != GgufType::Bool)
        keyError(key, "is an array of " + std::string(ggufTypeName(v.elementType)) + ", expected integers");
    std::vector<std::int64_t> out(static_cast<std::size_t>(v.count));
    for (std::uint64_t k = 0; k < v.count; ++k) {
        if (v.elementType == GgufType::U64) {
            std::uint64_t u;
            std::memcpy(&u, v.raw.data() + 8 * k, 8);
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                keyError(key, "element " + std::to_string(k) + " is too large");
            out[static_cast<std::size_t>(k)] = static_cast<std::int64_t>(u);
        } else if (v.elementType == GgufType::I64) {
            std::memcpy(&out[static_cast<std::size_t>(k)], v.raw.data() + 8 * k, 8);
        } else {
            out[static_cast<std::size_t>(k)] = static_cast<std::int64_t>(v.numberAt(k));
        }
    }
    return out;
}

std::string GgufFile::getString(std::string_view key, std::string_view fallback) const {
    return contains(key) ? getString(key) : std::string(fallback);
}
std::int64_t GgufFile::getInt(std::string_view key, std::int64_t fallback) const {
    return contains(key) ? getInt(key) : fallback;
}
double GgufFile::getFloat(std::string_view key, double fallback) const {
    return contains(key) ? getFloat(key) : fallback;
}
bool GgufFile::getBool(std::string_view key, bool fallback) const { return contains(key) ? getBool(key) : fallback; }

const GgufTensor* GgufFile::findTensor(std::string_view name) const {
    const auto it = tensorIndex_.find(name);
    return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
    const GgufTensor* t = findTensor(name);
    if (!t) throw FormatError(name_ + ": tensor " + quoted(name) + " is missing");
    return *t;
}

// ---- writing ----

GgufWriteValue GgufWriteValue::scalarU(GgufType t, std::uint64_t v) {
    GgufWriteValue w;
    w.type = t;
    w.u = v;
    return w;
}
GgufWriteValue GgufWriteValue::scalarI(GgufType t, std::int64_t v) {
    GgufWriteValue w;
    w.type = t;
    w.i = v;
    return w;
}
GgufWriteValue GgufWriteValue::scalarF(GgufType t, double v) {
    GgufWriteValue w;
    w.type = t;
    w.f = v;
    return w;
}
GgufWriteValue GgufWriteValue::string(std::string v) {
    GgufWriteValue w;
    w.type = GgufType::String;
    w.s = std::move(v);
    return w;
}
GgufWriteValue GgufWriteValue::array(GgufType elementType, std::vector<GgufWriteValue> items) {
    for (const auto& item : items)
        if (item.type != elementType) throw std::invalid_argument("GgufWriteValue::array: mixed element types");
    GgufWriteValue w;
    w.type = GgufType::Array;
    w.elementType = elementType;
    w.items = std::move(items);
    return w;
}
GgufWriteValue GgufWriteValue::stringArray(const std::vector<std::string>& values) {
    std::vector<GgufWriteValue> items;
    items.reserve(values.size());
    for (const auto& v : values) items.push_back(string(v));
    return array(GgufType::String, std::move(items));
}
GgufWriteValue GgufWriteValue::f32Array(const std::vector<float>& values) {
    std::vector<GgufWriteValue> items;
    items.reserve(values.size());
    for (float v : values) items.push_back(f32(v));
    return array(GgufType::F32, std::move(items));
}
GgufWriteValue GgufWriteValue::i32Array(const std::vector<std::int32_t>& values) {
    std::vector<GgufWriteValue> items;
    items.reserve(values.size());
    for (auto v : values) items.push_back(i32(v));
    return array(GgufType::I32, std::move(items));
}

void GgufWriter::set(std::string key, GgufWriteValue value) {
    for (auto& [k, v] : metadata_)
        if (k == key) {
            v = std::move(value);
            return;
        }
    metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::setAlignment(std::uint32_t alignment) {
    if (alignment == 0 || !std::has_single_bit(alignment)) throw std::invalid_argument("GGUF alignment must be a power of two");
    alignment_ = alignment;
    set("general.alignment", GgufWriteValue::u32(alignment));
}

void GgufWriter::addTensor(std::string name, DType dtype, std::vector<std::int64_t> shape, std::span<const std::uint8_t> data) {
    std::int64_t elements = 1;
    for (auto n : shape) elements *= n;
    const auto bytes = byteSize(dtype, elements);
    if (shape.empty() || shape.size() > kMaxDims || !bytes || static_cast<std::uint64_t>(*bytes) != data.size())
        throw std::invalid_argument("GgufWriter::addTensor: " + name + ": data size does not match its shape and type");
    tensors_.push_back({std::move(name), dtype, std::move(shape), data});
}

namespace {

template <typename Sink>
void put(Sink& sink, const void* data, std::size_t n) {
    sink(static_cast<const char*>(data), n);
}
template <typename Sink, typename T>
void putScalar(Sink& sink, T v) {
    put(sink, &v, sizeof v);
}
template <typename Sink>
void putString(Sink& sink, std::string_view s) {
    putScalar<Sink, std::uint64_t>(sink, s.size());
    put(sink, s.data(), s.size());
}
template <typename Sink>
void putValue(Sink& sink, const GgufWriteValue& v) {
    switch (v.type) {
        case GgufType::U8: case GgufType::Bool: putScalar(sink, static_cast<std::uint8_t>(v.u)); break;
        case GgufType::I8: putScalar(sink, static_cast<std::int8_t>(v.i)); break;
        case GgufType::U16: putScalar(sink, static_cast<std::uint16_t>(v.u)); break;
        case GgufType::I16: putScalar(sink, static_cast<std::int16_t>(v.i)); break;
        case GgufType::U32: putScalar(sink, static_cast<std::uint32_t>(v.u)); break;
        case GgufType::I32: putScalar(sink, static_cast<std::int32_t>(v.i)); break;
        case GgufType::U64: putScalar(sink, v.u); break;
        case GgufType::I64: putScalar(sink, v.i); break;
        case GgufType::F32: putScalar(sink, static_cast<float>(v.f)); break;
        case GgufType::F64: putScalar(sink, v.f); break;
        case GgufType::String: putString(sink, v.s); break;
        case GgufType::Array:
            putScalar(sink, static_cast<std::uint32_t>(v.elementType));
            putScalar<Sink, std::uint64_t>(sink, v.items.size());
            for (const auto& item : v.items) putValue(sink, item);
            break;
    }
}

}  // namespace

template <typename Sink>
void GgufWriter::writeTo(Sink& sink) const {
    std::uint64_t written = 0;
    auto counting = [&](const char* data, std::size_t n) {
        sink(data, n);
        written += n;
    };
    auto pad = [&] {
        static const char kZeros[64] = {};
        std::uint64_t n = (alignment_ - written % alignment_) % alignment_;
        while (n > 0) {
            const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof kZeros));
            counting(kZeros, chunk);
            n -= chunk;
        }
    };
    putScalar(counting, kMagic);
    putScalar<decltype(counting), std::uint32_t>(counting, 3);
    putScalar<decltype(counting), std::uint64_t>(counting, tensors_.size());
    putScalar<decltype(counting), std::uint64_t>(counting, metadata_.size());
    for (const auto& [key, value] : metadata_) {
        putString(counting, key);
        putScalar(counting, static_cast<std::uint32_t>(value.type));
        putValue(counting, value);
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
        putString(counting, t.name);
        putScalar(counting, static_cast<std::uint32_t>(t.shape.size()));
        for (auto n : t.shape) putScalar(counting, static_cast<std::uint64_t>(n));
        putScalar(counting, static_cast<std::uint32_t>(t.dtype));
        putScalar(counting, offset);
        offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    pad();
    for (const auto& t : tensors_) {
        counting(reinterpret_cast<const char*>(t.data.data()), t.data.size());
        pad();
    }
}

void GgufWriter::write(const std::filesystem::path& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw FormatError(path.string() + ": cannot create the file");
    auto sink = [&](const char* data, std::size_t n) { out.write(data, static_cast<std::streamsize>(n)); };
    writeTo(sink);
    out.flush();
    if (!out) throw FormatError(path.string() + ": writing failed (disk full?)");
}

std::vector<std::uint8_t> GgufWriter::toBytes() const {
    std::vector<std::uint8_t> bytes;
    auto sink = [&](const char* data, std::size_t n) { bytes.insert(bytes.end(), data, data + n); };
    writeTo(sink);
    return bytes;
}

Tensor tensorView(const GgufFile& f, const std::string& name, std::vector<std::int64_t> expected, bool optional) {
    const GgufTensor* t = f.findTensor(name);
    if (!t) {
        if (optional) return {};
        throw FormatError(f.displayName() + ": tensor '" + name + "' is missing");
    }
    Tensor out;
    out.name = name;
    out.dtype = t->dtype;
    for (std::size_t i = 0; i < t->shape.size(); ++i) out.ne[i] = t->shape[i];
    out.data = t->data.data();
    // Compare the shape without trailing 1s.
    std::vector<std::int64_t> shape = t->shape;
    while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    if (shape != expected) {
        auto text = [](const std::vector<std::int64_t>& s) {
            std::string r = "[";
            for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
            return r + "]";
        };
        throw FormatError(f.displayName() + ": tensor '" + name + "' has shape " + text(t->shape) + ", expected " + text(expected));
    }
    return out;
}


}  // namespace lumen::inference
