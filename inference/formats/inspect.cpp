#include "inference/formats/inspect.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "inference/formats/gguf.h"
#include "inference/formats/quants.h"
#include "inference/formats/safetensors.h"

namespace lumen::inference {
namespace {

// GGUF by extension or by magic; everything else (folders included) is read as safetensors.
bool isGgufPath(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return false;
    if (path.extension() == ".gguf") return true;
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

std::string withCommas(std::int64_t n) {
    const std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
        out += digits[i];
    }
    return out;
}

std::string humanSize(double bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000.0 && u < 4) {
        bytes /= 1000.0;
        ++u;
    }
    std::ostringstream s;
    s << std::setprecision(bytes < 10 ? 2 : 3) << bytes << ' ' << units[u];
    return s.str();
}

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Text from the file made safe for a terminal: control characters (C0, DEL, and C1 such as
// U+009B, which terminals read as the start of an escape sequence) as \xHH, newlines as \n.
// A file's names and strings could otherwise retitle the window or rewrite the screen.
std::string plainText(std::string_view s, std::size_t limit = std::string_view::npos) {
    static const char* kHex = "0123456789abcdef";
    const auto hex = [](unsigned v) { return std::string("\\x") + kHex[(v >> 4) & 0xF] + kHex[v & 0xF]; };
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n') out += "\\n";
        else if (c < 0x20 || c == 0x7f) out += hex(c);
        else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 && static_cast<unsigned char>(s[i + 1]) <= 0x9F)
            out += hex(static_cast<unsigned char>(s[++i]));
        else out += static_cast<char>(c);
    }
    return out;
}

std::string quotedText(std::string_view s, std::size_t limit = 80) {
    std::string out = "\"";
    for (char c : plainText(s, limit)) out += c == '"' ? std::string("\\\"") : std::string(1, c);
    if (s.size() > limit) out += "…\" (" + std::to_string(s.size()) + " bytes)";
    else out += "\"";
    return out;
}

// Integers exactly (doubles hold every integer element type but u64/i64 beyond 2^53), floats
// to float precision.
std::string numberText(double v) {
    std::ostringstream s;
    if (v == std::floor(v) && std::fabs(v) < 9e15) s << std::fixed << std::setprecision(0) << v;
    else s << std::setprecision(8) << v;
    return s.str();
}

std::uint64_t arrayU64(const GgufValue& v, std::uint64_t k) {
    std::uint64_t u;
    std::memcpy(&u, v.raw.data() + 8 * k, 8);
    return u;
}

std::string valueText(const GgufValue& v, int preview) {
    switch (v.type) {
        case GgufType::String: return quotedText(v.s);
        case GgufType::Bool: return v.u ? "true" : "false";
        case GgufType::Array: {
            std::string s = "[" + std::string(ggufTypeName(v.elementType)) + " × " + std::to_string(v.count) + "]";
            const auto shown = std::min<std::uint64_t>(v.count, static_cast<std::uint64_t>(preview));
            for (std::uint64_t k = 0; k < shown; ++k) {
                s += k ? ", " : " ";
                if (v.elementType == GgufType::String) s += quotedText(v.strings[static_cast<std::size_t>(k)], 24);
                else if (v.elementType == GgufType::Array) s += valueText(v.items[static_cast<std::size_t>(k)], 3);
                else if (v.elementType == GgufType::U64) s += std::to_string(arrayU64(v, k));
                else s += numberText(v.numberAt(k));
            }
            if (v.count > shown) s += ", …";
            return s;
        }
        case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: return std::to_string(v.u);
        case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64: return std::to_string(v.i);
        default: return numberText(v.asNumber());
    }
}

void printLlmSummary(const GgufFile& f, std::ostream& out) {
    const std::string arch = f.getString("general.architecture", "");
    if (arch.empty()) return;
    auto key = [&](const char* suffix) { return arch + "." + suffix; };
    if (!f.contains(key("block_count"))) return;
    const auto layers = f.getInt(key("block_count"));
    const auto dim = f.getInt(key("embedding_length"), 0);
    const auto heads = f.getInt(key("attention.head_count"), 0);
    const auto kvHeads = f.getInt(key("attention.head_count_kv"), heads);
    out << "architecture: " << plainText(arch) << "\n";
    out << "  layers " << layers << ", embedding " << dim << ", feed-forward " << f.getInt(key("feed_forward_length"), 0)
        << "\n";
    out << "  attention heads " << heads << ", KV heads " << kvHeads;
    if (heads > 0 && kvHeads > 0 && kvHeads != heads) out << " (grouped-query, " << heads / kvHeads << " per KV head)";
    if (heads > 0) out << ", head dim " << f.getInt(key("attention.key_length"), dim / heads);
    out << "\n";
    out << "  context " << f.getInt(key("context_length"), 0) << " tokens\n";
    out << "  RoPE: base " << numberText(f.getFloat(key("rope.freq_base"), 10000.0));
    if (f.contains(key("rope.dimension_count"))) out << ", dimensions " << f.getInt(key("rope.dimension_count"));
    if (f.contains(key("rope.scaling.type"))) out << ", scaling " << plainText(f.getString(key("rope.scaling.type")));
    out << "\n";
    if (f.contains(key("attention.layer_norm_rms_epsilon")))
        out << "  RMSNorm epsilon " << numberText(f.getFloat(key("attention.layer_norm_rms_epsilon"))) << "\n";
    if (f.getInt(key("attention.sliding_window"), 0) > 0)
        out << "  sliding window " << f.getInt(key("attention.sliding_window")) << " tokens on local layers\n";
    if (f.contains(key("ssm.time_step_rank"))) {  // Gated DeltaNet (qwen35)
        out << "  Gated DeltaNet on every layer but each " << f.getInt(key("full_attention_interval"), 4) << "th: " << f.getInt(key("ssm.group_count"), 0)
            << " key and " << f.getInt(key("ssm.time_step_rank")) << " value heads, key heads of " << f.getInt(key("ssm.state_size"), 0)
            << ", a convolution of " << f.getInt(key("ssm.conv_kernel"), 0) << " taps\n";
        if (const auto mtp = f.getInt(key("nextn_predict_layers"), 0); mtp > 0)
            out << "  " << mtp << " multi-token-prediction layer" << (mtp == 1 ? "" : "s") << " (counted in the layers, not run)\n";
    }
    if (const auto experts = f.getInt(key("expert_count"), 0); experts > 0) {
        out << "  experts " << experts << ", " << f.getInt(key("expert_used_count"), 0) << " used per token";
        if (f.contains(key("expert_feed_forward_length"))) out << ", each " << f.getInt(key("expert_feed_forward_length")) << " wide";
        out << "\n";
    }
    if (f.contains(key("attn_logit_softcapping")) || f.contains(key("final_logit_softcapping"))) {
        out << "  soft-capping:";
        if (f.contains(key("attn_logit_softcapping"))) out << " attention " << numberText(f.getFloat(key("attn_logit_softcapping")));
        if (f.contains(key("final_logit_softcapping"))) out << " logits " << numberText(f.getFloat(key("final_logit_softcapping")));
        out << "\n";
    }
    if (f.contains("tokenizer.ggml.tokens")) {
        out << "  vocabulary " << f.getArray("tokenizer.ggml.tokens").count << " tokens ("
            << plainText(f.getString("tokenizer.ggml.model", "unknown")) << " tokenizer";
        if (f.contains("tokenizer.ggml.pre")) out << ", pre-tokenizer " << plainText(f.getString("tokenizer.ggml.pre"));
        out << ")\n";
    }
    out << "  chat template: " << (f.contains("tokenizer.chat_template") ? "yes" : "none in the file") << "\n";
}

}  // namespace

std::string mmprojSummary(const GgufFile& f) {
    const std::int64_t dim = f.getInt("clip.vision.embedding_length", 0), size = f.getInt("clip.vision.image_size", 0),
                       patch = f.getInt("clip.vision.patch_size", 0), layers = f.getInt("clip.vision.block_count", 0);
    const auto* mm2 = f.findTensor("mm.2.weight");
    std::string s = "mmproj: CLIP vision tower, " + std::to_string(layers) + " layers, " + std::to_string(dim) + " wide, " + std::to_string(size) +
                    " px images in " + std::to_string(patch) + " px patches; projector \"" + plainText(f.getString("clip.projector_type", "mlp")) + "\"";
    if (mm2 && mm2->shape.size() >= 2) s += "; for LLMs " + std::to_string(mm2->shape[1]) + " wide (embedding_length)";
    if (size > 0 && patch > 0) s += "; " + std::to_string((size / patch) * (size / patch)) + " embeddings per image";
    return s;
}

namespace {

void inspectGguf(const std::filesystem::path& path, std::ostream& out, const InspectOptions& options) {
    const GgufFile f = GgufFile::open(path);
    out << "file: " << path.string() << " (" << humanSize(static_cast<double>(f.fileSize())) << ")\n";
    out << "format: GGUF v" << f.version() << ", alignment " << f.alignment() << ", tensor data at offset "
        << f.dataOffset() << "\n";
    const std::string arch = f.getString("general.architecture", "");
    if (!f.getString("general.name", "").empty()) out << "name: " << plainText(f.getString("general.name")) << "\n";
    if (f.tensors().empty()) out << "kind: vocabulary only (no tensors)\n";
    else if (arch == "clip") out << "kind: vision encoder (CLIP" << (f.getBool("clip.has_llava_projector", false) ? " + LLaVA projector, mmproj" : "") << ")\n";
    else if (!arch.empty()) out << "kind: language model (" << plainText(arch) << ")\n";
    printLlmSummary(f, out);
    if (arch == "clip") out << mmprojSummary(f) << "\n";

    std::int64_t params = 0, bytes = 0, expertParams = 0;
    std::map<std::string, int> byType;
    for (const auto& t : f.tensors()) {
        params += t.elements;
        bytes += t.bytes;
        ++byType[std::string(name(t.dtype))];
        if (t.name.ends_with("_exps.weight")) expertParams += t.elements;
    }
    out << "parameters: " << withCommas(params) << " in " << f.tensors().size() << " tensors, "
        << humanSize(static_cast<double>(bytes));
    if (params > 0) out << " (" << std::setprecision(3) << 8.0 * static_cast<double>(bytes) / static_cast<double>(params) << " bits per weight)";
    out << "\n";
    // A mixture of experts: what one token goes through (the experts it uses, all the rest).
    const std::int64_t experts = arch.empty() ? 0 : f.getInt(arch + ".expert_count", 0), used = arch.empty() ? 0 : f.getInt(arch + ".expert_used_count", 0);
    if (experts > 0 && used > 0 && used <= experts && expertParams > 0)
        out << "active parameters per token: " << withCommas(params - expertParams + expertParams / experts * used) << " (" << used << " of "
            << experts << " experts)\n";
    if (!byType.empty()) {
        out << "tensor types:";
        for (const auto& [type, count] : byType) out << " " << type << "×" << count;
        out << "\n";
    }
    if (options.showMetadata) {
        out << "\nmetadata (" << f.metadata().size() << " keys):\n";
        for (const auto& [key, value] : f.metadata())
            out << "  " << plainText(key) << " (" << ggufTypeName(value.type) << ") = " << valueText(value, options.arrayPreview) << "\n";
    }
    if (options.showTensors && !f.tensors().empty()) {
        std::size_t width = 4;
        for (const auto& t : f.tensors()) width = std::max(width, t.name.size());
        out << "\ntensors:\n  " << std::left << std::setw(static_cast<int>(width)) << "name" << "  " << std::setw(6) << "type"
            << "  " << std::setw(22) << "shape (ne)" << "  bytes\n";
        for (const auto& t : f.tensors())
            out << "  " << std::setw(static_cast<int>(width)) << plainText(t.name) << "  " << std::setw(6) << name(t.dtype) << "  "
                << std::setw(22) << shapeText(t.shape) << "  " << t.bytes << "\n";
        out << std::right;
    }
}

void printConfig(const std::filesystem::path& dir, std::ostream& out) {
    const auto configPath = dir / "config.json";
    std::ifstream in(configPath);
    if (!in) return;
    nlohmann::json config;
    try {
        in >> config;
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(configPath.string() + ": not valid JSON (" + e.what() + ")");
    }
    if (!config.is_object()) throw FormatError(configPath.string() + ": not a JSON object");
    out << "config.json:";
    if (config.contains("model_type")) out << " model_type " << config["model_type"].dump();
    if (config.contains("architectures")) out << ", architectures " << config["architectures"].dump();
    out << "\n";
    auto printSection = [&](const nlohmann::json& section, const std::string& label) {
        static const char* kKeys[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                      "image_size", "patch_size", "projection_dim", "hidden_act", "layer_norm_eps",
                                      "vocab_size", "max_position_embeddings", "num_register_tokens", "layerscale_value"};
        std::string line;
        for (const char* k : kKeys)
            if (section.contains(k) && !section[k].is_object()) line += std::string(line.empty() ? "" : ", ") + k + " " + section[k].dump();
        if (!line.empty()) out << "  " << label << line << "\n";
    };
    printSection(config, "");
    for (const char* sub : {"vision_config", "text_config"})
        if (config.contains(sub) && config[sub].is_object()) printSection(config[sub], std::string(sub) + ": ");
}

void inspectSafetensors(const std::filesystem::path& path, std::ostream& out, const InspectOptions& options) {
    const SafetensorsModel m = SafetensorsModel::open(path);
    out << "path: " << path.string() << "\n";
    out << "format: safetensors, " << m.files().size() << (m.files().size() == 1 ? " file" : " files (sharded)") << "\n";
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) printConfig(path, out);
    std::int64_t params = 0;
    std::uint64_t bytes = 0;
    std::map<std::string, int> byType;
    for (const auto& t : m.tensors()) {
        params += t.elements;
        bytes += t.data.size();
        ++byType[t.dtypeName];
    }
    out << "parameters: " << withCommas(params) << " in " << m.tensors().size() << " tensors, " << humanSize(static_cast<double>(bytes)) << "\n";
    out << "tensor types:";
    for (const auto& [type, count] : byType) out << " " << type << "×" << count;
    out << "\n";
    if (options.showMetadata && !m.metadata().empty()) {
        out << "\nmetadata:\n";
        for (const auto& [k, v] : m.metadata()) out << "  " << k << " = " << quotedText(v) << "\n";
    }
    if (options.showTensors) {
        std::vector<const SafetensorsTensor*> sorted;
        for (const auto& t : m.tensors()) sorted.push_back(&t);
        std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
        std::size_t width = 4;
        for (auto* t : sorted) width = std::max(width, t->name.size());
        out << "\ntensors:\n  " << std::left << std::setw(static_cast<int>(width)) << "name" << "  " << std::setw(6) << "type"
            << "  " << std::setw(22) << "shape" << "  bytes\n";
        for (auto* t : sorted)
            out << "  " << std::setw(static_cast<int>(width)) << t->name << "  " << std::setw(6) << t->dtypeName << "  "
                << std::setw(22) << shapeText(t->shape) << "  " << t->data.size() << "\n";
        out << std::right;
    }
}

// Converts `elements` values starting at `data` in chunks and appends them to `out`.
void writeF32(DType type, std::span<const std::uint8_t> data, std::int64_t elements, std::ofstream& out) {
    const DTypeTraits& t = traits(type);
    const std::int64_t chunk = std::max<std::int64_t>(t.blockSize, (1 << 20) / t.blockSize * t.blockSize);
    std::vector<float> buffer(static_cast<std::size_t>(chunk));
    for (std::int64_t done = 0; done < elements; done += chunk) {
        const std::int64_t n = std::min(chunk, elements - done);
        dequantize(type, data.data() + done / t.blockSize * t.blockBytes, buffer.data(), n);
        out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(n * 4));
    }
}

}  // namespace

void inspectModel(const std::filesystem::path& path, std::ostream& out, const InspectOptions& options) {
    if (isGgufPath(path)) inspectGguf(path, out, options);
    else inspectSafetensors(path, out, options);
}

std::int64_t dumpTensorF32(const std::filesystem::path& path, const std::string& tensorName,
                           const std::filesystem::path& output) {
    std::ofstream out;
    auto openOut = [&] {
        out.open(output, std::ios::binary | std::ios::trunc);
        if (!out) throw FormatError(output.string() + ": cannot create the file");
    };
    std::int64_t elements = 0;
    if (isGgufPath(path)) {
        const GgufFile f = GgufFile::open(path);
        const GgufTensor& t = f.tensor(tensorName);
        openOut();
        writeF32(t.dtype, t.data, t.elements, out);
        elements = t.elements;
    } else {
        const SafetensorsModel m = SafetensorsModel::open(path);
        const SafetensorsTensor& t = m.tensor(tensorName);
        if (!t.dtype)
            throw FormatError(t.file + ": tensor '" + tensorName + "' has dtype " + t.dtypeName + ", which cannot be converted to float32");
        openOut();
        writeF32(*t.dtype, t.data, t.elements, out);
        elements = t.elements;
    }
    out.flush();
    if (!out) throw FormatError(output.string() + ": writing failed (disk full?)");
    return elements;
}

}  // namespace lumen::inference
