#include "app/cli/cli.h"

#include <QCommandLineParser>
#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>
#include <QElapsedTimer>
#include <atomic>
#include <csignal>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "app/app_paths.h"
#include "app/cli/cli_context.h"
#include "app/cli/vision_commands.h"
#include "app/library.h"
#include "app/read_file.h"
#include "inference/core/backend.h"
#include "inference/core/compute_devices.h"
#include "inference/core/cpu_features.h"
#include "inference/formats/format_error.h"
#include "inference/formats/gguf.h"
#include "inference/formats/inspect.h"
#include "inference/formats/text.h"
#include "inference/llm/benchmark.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/generator.h"
#include "inference/llm/reasoning.h"
#include "inference/llm/tokenizer.h"
#include "storage/chat_export.h"
#include "storage/database.h"
#include "storage/sha256.h"
#include "inference/llm/multimodal.h"
#include "vision/embedding_cache.h"
#include "vision/image_decode.h"
#include "vision/mmproj.h"

namespace lumen::app::cli {
namespace {


QString databasePath(const QCommandLineParser& p) {
    return resolveDatabasePath({p.value(QStringLiteral("database")), p.value(QStringLiteral("data-dir"))});
}

// Opens the library for a command; nullopt (with the message printed) when it cannot.
std::unique_ptr<Library> openLibrary(Context& ctx, bool create) {
    const QString path = databasePath(ctx.parser);
    if (!create && !QFile::exists(path)) {
        ctx.err << "lumen-cli: no database at " << path << " (nothing has been stored yet)\n";
        return nullptr;
    }
    if (const QString problem = ensureParentFolder(path); !problem.isEmpty()) {
        ctx.err << "lumen-cli: " << problem << "\n";
        return nullptr;
    }
    try {
        return std::make_unique<Library>(path);
    } catch (const storage::DamagedDatabase& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        if (e.backup()) ctx.err << "lumen-cli: `lumen-cli restore` puts the backup in its place (the damaged file is kept beside it)\n";
        return nullptr;
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        return nullptr;
    }
}

// Puts the newest backup in place of a damaged database (the app's "Restore the Backup"). A
// database that passes its check is not replaced without --force: the backup may be a day old.
int cmdRestore(Context& ctx) {
    const QString path = databasePath(ctx.parser);
    const std::filesystem::path file = path.toStdString();
    if (!QFile::exists(path)) {
        ctx.err << "lumen-cli: no database at " << path << "\n";
        return kFailed;
    }
    const auto backup = storage::Database::newestBackup(file);
    if (!backup) {
        ctx.err << "lumen-cli: there is no backup of " << path << " to restore\n";
        return kFailed;
    }
    bool damaged = false;
    try {
        (void)storage::Database::open(file);  // (the check every open runs)
    } catch (const storage::Error&) {
        damaged = true;
    }
    if (!damaged && !ctx.parser.isSet(QStringLiteral("force"))) {
        ctx.err << "lumen-cli: " << path << " passes its integrity check; restoring " << QString::fromStdString(backup->string())
                << " would lose what was stored since it was made. Add --force to restore it anyway.\n";
        return kFailed;
    }
    try {
        const auto aside = storage::Database::restoreBackup(file, *backup);
        ctx.out << "restored " << path << " from " << QString::fromStdString(backup->string()) << "; the replaced file is kept as "
                << QString::fromStdString(aside.string()) << "\n";
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
        return kFailed;
    }
    return kOk;
}

std::optional<std::int64_t> parseId(Context& ctx, const QString& text, const char* what) {
    bool ok = false;
    const qint64 id = text.toLongLong(&ok);
    if (!ok || id <= 0) {
        ctx.err << "lumen-cli: '" << text << "' is not a " << what << " id (a positive number; see `lumen-cli chats`)\n";
        return std::nullopt;
    }
    return id;
}

QString formatBytes(std::uint64_t bytes) {
    return QStringLiteral("%1 GiB").arg(static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0), 0, 'f', 1);
}

int cmdInfo(Context& ctx) {
    const auto& cpu = inference::cpuFeatures();
    ctx.out << "Lumen " << LUMEN_VERSION_STRING << "\n";
    ctx.out << "CPU: " << QString::fromStdString(cpu.brand.empty() ? cpu.vendor : cpu.brand) << "\n";
    ctx.out << "  cores: " << cpu.physicalCores << " physical, " << cpu.logicalCores << " logical\n";
    ctx.out << "  SIMD: " << QString::fromStdString(cpu.summary()) << "\n";
    ctx.out << "  kernels: " << QString::fromUtf8(inference::cpuKernelSet()) << "\n";
    const auto devices = inference::queryComputeDevices();
    ctx.out << "CUDA backend: " << (devices.cudaBuilt ? "built" : "not built") << "\n";
    for (const auto& gpu : devices.gpus)
        ctx.out << "  GPU " << gpu.index << ": " << QString::fromStdString(gpu.name) << ", compute "
                << gpu.computeMajor << "." << gpu.computeMinor << ", " << formatBytes(gpu.totalMemory)
                << " (" << formatBytes(gpu.freeMemory) << " free), " << gpu.multiprocessors << " SMs, "
                << QString::number(gpu.memoryBandwidth / 1e9, 'f', 0) << " GB/s peak\n";
    if (devices.gpus.empty()) {
        ctx.out << "  no GPU in use: " << QString::fromStdString(devices.cudaUnavailableReason)
                << "; computing on the CPU\n";
    } else {
        // A GPU found is not always usable: the backend also needs cuBLAS and compute 8.0.
        try {
            inference::makeCudaBackend();
            ctx.out << "  GPU 0 ready for models (--gpu-layers)\n";
        } catch (const std::exception& e) {
            ctx.out << "  GPU 0 not usable: " << QString::fromUtf8(e.what()) << "; computing on the CPU\n";
        }
    }
    ctx.out << "Database: " << databasePath(ctx.parser) << "\n";
    return kOk;
}

int cmdChats(Context& ctx) {
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    const auto chats = library->chats().chats();
    if (chats.empty()) ctx.out << "(no chats)\n";
    for (const auto& chat : chats) {
        const QString when = QDateTime::fromMSecsSinceEpoch(chat.updatedAt).toString(QStringLiteral("yyyy-MM-dd hh:mm"));
        ctx.out << chat.id << "\t" << when << "\t" << library->chats().messages(chat.id).size()
                << " messages\t" << QString::fromStdString(chat.title) << "\n";
    }
    return kOk;
}

int cmdExport(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: export takes one chat id: lumen-cli export CHAT_ID [--format md|json] [--output FILE]\n";
        return kUsage;
    }
    const auto id = parseId(ctx, ctx.positional[0], "chat");
    if (!id) return kUsage;
    const QString format = ctx.parser.value(QStringLiteral("format"));
    if (format != QLatin1String("md") && format != QLatin1String("json")) {
        ctx.err << "lumen-cli: --format must be md or json, not '" << format << "'\n";
        return kUsage;
    }
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    std::string text;
    try {
        text = format == QLatin1String("md")
                   ? storage::exportChatMarkdown(library->chats(), library->images(), *id)
                   : storage::exportChatJson(library->chats(), library->images(), *id);
    } catch (const storage::Error& e) {
        return fail(ctx, e);
    }
    const QString output = ctx.parser.value(QStringLiteral("output"));
    if (output.isEmpty() || output == QLatin1String("-")) {
        ctx.out << QString::fromStdString(text);
        return kOk;
    }
    QSaveFile file(output);
    if (!file.open(QIODevice::WriteOnly) || file.write(text.data(), static_cast<qint64>(text.size())) < 0 ||
        !file.commit()) {
        ctx.err << "lumen-cli: cannot write " << output << ": " << file.errorString() << "\n";
        return kFailed;
    }
    ctx.out << "wrote " << output << "\n";
    return kOk;
}

int cmdImport(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: import takes one file: lumen-cli import CHAT.json\n";
        return kUsage;
    }
    QString readError;
    const auto read = readUserFile(ctx.positional[0], kMaxExportFileBytes, readError);
    if (!read) {
        ctx.err << "lumen-cli: cannot read " << ctx.positional[0] << ": " << readError << "\n";
        return kFailed;
    }
    const QByteArray& bytes = *read;
    auto library = openLibrary(ctx, true);
    if (!library) return kFailed;
    try {
        const auto id = storage::importChatJson(library->database(), std::string_view(bytes.constData(), static_cast<std::size_t>(bytes.size())));
        ctx.out << "imported chat " << id << "\n";
    } catch (const storage::Error& e) {
        ctx.err << "lumen-cli: " << ctx.positional[0] << ": " << QString::fromUtf8(e.what()) << "\n";
        return kFailed;
    }
    return kOk;
}

int cmdSearch(Context& ctx) {
    if (ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: search needs words to look for: lumen-cli search WORDS...\n";
        return kUsage;
    }
    auto library = openLibrary(ctx, false);
    if (!library) return kFailed;
    const auto hits = library->chats().search(ctx.positional.join(QLatin1Char(' ')).toStdString(), 50, {"*", "*", "…"});
    if (hits.empty()) ctx.out << "(no matches)\n";
    for (const auto& hit : hits) {
        ctx.out << hit.chatId << "\t" << QString::fromStdString(hit.chatTitle) << "\t";
        if (hit.messageId) ctx.out << "message " << *hit.messageId << ": ";
        ctx.out << QString::fromStdString(hit.snippet).simplified() << "\n";
    }
    return kOk;
}

// Layer numbers as ranges: "0-4, 6-10, 12".
QString layerRanges(const std::vector<std::int64_t>& layers) {
    QStringList parts;
    for (std::size_t i = 0; i < layers.size();) {
        std::size_t j = i;
        while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
        parts << (i == j ? QString::number(layers[i]) : QStringLiteral("%1-%2").arg(layers[i]).arg(layers[j]));
        i = j + 1;
    }
    return parts.join(QStringLiteral(", "));
}

// For a GGUF language model, what this version of the engine makes of it: whether it runs it
// (or why not), and how its layers differ (sliding-window and global attention, layers without
// RoPE).
void describeEngineView(Context& ctx, const std::string& path) {
    std::shared_ptr<const inference::GgufFile> file;
    try {
        file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(path));
    } catch (const inference::FormatError&) {
        return;  // (a safetensors folder, or a file inspect already described)
    }
    const std::string arch = file->getString("general.architecture", "");
    if (arch.empty() || arch == "clip" || file->tensors().empty()) return;
    std::shared_ptr<inference::LanguageModel> model;
    try {
        model = inference::LanguageModel::load(file);
    } catch (const std::exception& e) {
        ctx.out << "\nthis version of Lumen cannot run it: " << QString::fromUtf8(e.what()) << "\n";
        return;
    }
    const auto& c = model->config();
    ctx.out << "\nthis version of Lumen runs it (as " << QString::fromStdString(c.architecture) << ")\n";
    std::vector<std::int64_t> local, global, noRope;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        const auto& la = c.layers[static_cast<std::size_t>(l)];
        (la.window > 0 ? local : global).push_back(l);
        if (!la.rope) noRope.push_back(l);
    }
    if (!local.empty())
        ctx.out << "  sliding-window layers (" << local.size() << ", " << c.layers[static_cast<std::size_t>(local[0])].window
                << " positions, cache kept to the window on the CPU): " << layerRanges(local) << "\n"
                << "  global layers (" << global.size() << "): " << (global.empty() ? QStringLiteral("none") : layerRanges(global)) << "\n";
    if (!noRope.empty()) ctx.out << "  layers without RoPE (" << noRope.size() << "): " << layerRanges(noRope) << "\n";
    if (model->weights().computedRopeFreqs.size() > 0)
        ctx.out << "  YaRN RoPE scaling: cosine and sine times " << c.ropeAttnFactor << "\n";
    const auto& first = model->weights().layers.front();
    if (first.sinks.data) ctx.out << "  attention sinks: one learned logit per head joins each softmax\n";
    if (c.swigluLimit > 0.0f) ctx.out << "  experts' SwiGLU clamped at " << c.swigluLimit << ", with biases\n";
}

int cmdInspect(Context& ctx) {
    if (ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: inspect takes one model file or folder: lumen-cli inspect MODEL [--tensor NAME --dump OUT.f32]\n";
        return kUsage;
    }
    const std::string path = ctx.positional[0].toStdString();
    const QString tensor = ctx.parser.value(QStringLiteral("tensor"));
    const QString dump = ctx.parser.value(QStringLiteral("dump"));
    if (tensor.isEmpty() != dump.isEmpty()) {
        ctx.err << "lumen-cli: --tensor and --dump go together: --tensor NAME --dump OUT.f32\n";
        return kUsage;
    }
    try {
        if (!tensor.isEmpty()) {
            const auto n = inference::dumpTensorF32(path, tensor.toStdString(), dump.toStdString());
            ctx.out << "wrote " << n << " float32 values of " << tensor << " to " << dump << "\n";
            return kOk;
        }
        inference::InspectOptions options;
        options.showMetadata = !ctx.parser.isSet(QStringLiteral("no-metadata"));
        options.showTensors = !ctx.parser.isSet(QStringLiteral("no-tensors"));
        std::ostringstream report;
        inference::inspectModel(path, report, options);
        ctx.out << QString::fromStdString(report.str());
        describeEngineView(ctx, path);
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    }
    return kOk;
}

// A token's text for display: control characters escaped, the whole thing quoted.
QString shownPiece(const std::string& bytes) {
    QString out = QStringLiteral("'");
    for (const QChar c : QString::fromUtf8(bytes.data(), static_cast<qsizetype>(bytes.size()))) {
        if (c == QLatin1Char('\n')) out += QStringLiteral("\\n");
        else if (c == QLatin1Char('\t')) out += QStringLiteral("\\t");
        else if (c == QLatin1Char('\'')) out += QStringLiteral("\\'");
        else if (c.unicode() < 0x20) out += QStringLiteral("\\x%1").arg(c.unicode(), 2, 16, QLatin1Char('0'));
        else out += c;
    }
    return out + QLatin1Char('\'');
}

int cmdTokenize(Context& ctx) {
    const QString model = ctx.parser.value(QStringLiteral("model"));
    if (model.isEmpty() || ctx.positional.size() != 1) {
        ctx.err << "lumen-cli: tokenize needs a model and one text: lumen-cli tokenize --model M.gguf [--ids] [--no-bos] [--parse-special] TEXT\n";
        return kUsage;
    }
    try {
        const auto file = inference::GgufFile::open(model.toStdString());
        const auto tokenizer = inference::Tokenizer::fromGguf(file);
        const std::string text = ctx.positional[0].toStdString();
        const auto ids = tokenizer.encode(text, !ctx.parser.isSet(QStringLiteral("no-bos")),
                                          ctx.parser.isSet(QStringLiteral("parse-special")));
        if (ctx.parser.isSet(QStringLiteral("ids"))) {
            QStringList parts;
            for (auto id : ids) parts << QString::number(id);
            ctx.out << parts.join(QLatin1Char(' ')) << "\n";
            return kOk;
        }
        for (auto id : ids)
            ctx.out << id << "\t" << shownPiece(tokenizer.tokenBytes(id, true)) << "\n";
        ctx.out << ids.size() << " tokens\n";
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    }
    return kOk;
}

int cmdTemplate(Context& ctx) {
    const QString model = ctx.parser.value(QStringLiteral("model"));
    const QString file = ctx.parser.value(QStringLiteral("file"));
    const QString builtin = ctx.parser.value(QStringLiteral("builtin"));
    const QString contextPath = ctx.parser.value(QStringLiteral("context"));
    if ((!model.isEmpty()) + (!file.isEmpty()) + (!builtin.isEmpty()) != 1 || contextPath.isEmpty() || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: template needs one of --model M.gguf, --file T.jinja or --builtin NAME, and --context C.json\n"
                << "  built-in templates:";
        for (auto name : inference::ChatTemplate::builtinNames()) ctx.err << " " << QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
        ctx.err << "\n";
        return kUsage;
    }
    QString readError;
    const auto contextRead = readUserFile(contextPath, kMaxTextFileBytes, readError);
    if (!contextRead) {
        ctx.err << "lumen-cli: cannot read " << contextPath << ": " << readError << "\n";
        return kFailed;
    }
    const QByteArray& contextBytes = *contextRead;
    nlohmann::ordered_json context;
    if (inference::jsonNestingDepth(std::string_view(contextBytes.constData(), static_cast<std::size_t>(contextBytes.size()))) > inference::kMaxJsonDepth) {
        ctx.err << "lumen-cli: " << contextPath << " nests deeper than " << inference::kMaxJsonDepth << " levels\n";
        return kFailed;
    }
    try {
        context = nlohmann::ordered_json::parse(contextBytes.constData(), contextBytes.constData() + contextBytes.size());
    } catch (const nlohmann::json::exception& e) {
        ctx.err << "lumen-cli: " << contextPath << " is not valid JSON: " << e.what() << "\n";
        return kFailed;
    }
    if (!context.is_object()) {
        ctx.err << "lumen-cli: " << contextPath << " must hold a JSON object (the template's variables)\n";
        return kFailed;
    }
    try {
        std::optional<inference::ChatTemplate> chatTemplate;
        if (!model.isEmpty()) {
            const auto gguf = inference::GgufFile::open(model.toStdString());
            chatTemplate = inference::ChatTemplate::fromGguf(gguf);
            if (!chatTemplate) {
                ctx.err << "lumen-cli: " << model << " has no chat template; choose one with --builtin NAME\n";
                return kFailed;
            }
            // bos_token and eos_token default to the model's.
            if (gguf.contains("tokenizer.ggml.tokens")) {
                const auto vocab = inference::Vocabulary::fromGguf(gguf);
                if (!context.contains("bos_token") && vocab.bos) context["bos_token"] = vocab.tokens[static_cast<std::size_t>(*vocab.bos)];
                if (!context.contains("eos_token") && vocab.eos) context["eos_token"] = vocab.tokens[static_cast<std::size_t>(*vocab.eos)];
            }
        } else if (!file.isEmpty()) {
            const auto source = readUserFile(file, kMaxTextFileBytes, readError);
            if (!source) {
                ctx.err << "lumen-cli: cannot read " << file << ": " << readError << "\n";
                return kFailed;
            }
            chatTemplate = inference::ChatTemplate::fromSource(source->toStdString(), file.toStdString());
        } else {
            chatTemplate = inference::ChatTemplate::builtin(builtin.toStdString());
        }
        const std::string prompt = chatTemplate->render(context);
        ctx.out << QString::fromUtf8(prompt.data(), static_cast<qsizetype>(prompt.size()));
    } catch (const inference::jinja::TemplateError& e) {
        return fail(ctx, e, kFailed, QStringLiteral("the template failed: "));
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    } catch (const std::invalid_argument& e) {
        return fail(ctx, e, kUsage);
    }
    return kOk;
}

// Ctrl+C during generation stops the reply (and prints the metrics) instead of killing the process.
std::atomic<bool> gInterrupted{false};
extern "C" void onInterrupt(int) { gInterrupted.store(true); }


// Where a model's layers run: the CPU always, plus a GPU for `gpuLayers` of them (the last).
struct Placement {
    std::unique_ptr<inference::Backend> cpu, gpu;
    std::int64_t gpuLayers = 0, layers = 0;
    inference::LayerSplit split() const { return {cpu.get(), gpu.get(), gpuLayers}; }
    QString describe() const {
        const auto name = [](const inference::Backend& b) { return QString::fromUtf8(b.name().data(), static_cast<qsizetype>(b.name().size())); };
        if (gpuLayers == 0) return name(*cpu);
        if (gpuLayers == layers) return name(*gpu);
        return QStringLiteral("%1 (%2 of %3 layers) and %4").arg(name(*gpu)).arg(gpuLayers).arg(layers).arg(name(*cpu));
    }
};

// --gpu-layers: "auto" (the default: -1), "all" (a number past any model's layer count) or a
// number of layers. nullopt, with the reason printed, when the text is none of these.
std::optional<std::int64_t> gpuLayersOption(Context& ctx) {
    const QString option = ctx.parser.value(QStringLiteral("gpu-layers")).trimmed().toLower();
    if (option.isEmpty() || option == QLatin1String("auto")) return -1;
    if (option == QLatin1String("all")) return std::int64_t{1} << 30;
    bool ok = false;
    const std::int64_t n = option.toLongLong(&ok);
    if (!ok || n < 0) {
        ctx.err << "lumen-cli: --gpu-layers takes auto, all or a number of layers, not '" << option << "'\n";
        return std::nullopt;
    }
    return n;
}

// Places the model for --gpu-layers (`wanted`, see gpuLayersOption). nullopt, with the reason
// printed, when the request cannot be met.
std::optional<Placement> placeModel(Context& ctx, const inference::LanguageModel& model, std::int64_t contextSize, int threads, std::int64_t wanted,
                                    inference::DType kvType = inference::DType::F16) {
    const std::int64_t nLayers = model.config().nLayers;
    if (wanted > nLayers) wanted = nLayers;
    Placement p;
    p.layers = nLayers;
    p.cpu = inference::makeCpuBackend({.threads = threads});
    if (wanted == 0) return p;
    try {
        p.gpu = inference::makeCudaBackend();
    } catch (const std::exception& e) {
        if (wanted > 0) {
            ctx.err << "lumen-cli: cannot use the GPU: " << QString::fromUtf8(e.what()) << "\n";
            return std::nullopt;
        }
        if (inference::queryComputeDevices().cudaBuilt) ctx.err << "lumen-cli: computing on the CPU: " << QString::fromUtf8(e.what()) << "\n";
        return p;
    }
    const auto devices = inference::queryComputeDevices();
    const std::uint64_t freeBytes = devices.gpus.empty() ? 0 : devices.gpus.front().freeMemory;
    const std::int64_t fitting = model.gpuLayersFitting(freeBytes, contextSize, kvType);
    if (wanted > fitting) {
        ctx.err << "lumen-cli: " << wanted << " layers do not fit in the GPU's " << QString::fromStdString(inference::formatBytes(freeBytes))
                << " of free memory; at most " << fitting << " do (try --gpu-layers " << fitting << " or a smaller --ctx-size)\n";
        return std::nullopt;
    }
    p.gpuLayers = wanted < 0 ? fitting : wanted;
    if (wanted < 0 && fitting < nLayers)
        ctx.err << "lumen-cli: " << fitting << " of " << nLayers << " layers fit in the GPU's free memory; the rest run on the CPU\n";
    if (p.gpuLayers == 0) p.gpu.reset();
    return p;
}

// A model ready to generate with, shared by generate and chat.
struct LoadedModel {
    std::shared_ptr<const inference::GgufFile> file;
    std::shared_ptr<inference::LanguageModel> model;
    std::optional<inference::Tokenizer> tokenizer;
    Placement placement;
    std::int64_t contextSize = 0;
    inference::DType kvType = inference::DType::F16;
};

// --cache-type: f16 (the default), f32 or q8_0. nullopt, with the reason printed, for anything else.
std::optional<inference::DType> cacheTypeOption(Context& ctx) {
    const QString option = ctx.parser.value(QStringLiteral("cache-type")).trimmed().toLower();
    if (option.isEmpty() || option == QLatin1String("f16")) return inference::DType::F16;
    if (option == QLatin1String("f32")) return inference::DType::F32;
    if (option == QLatin1String("q8_0")) return inference::DType::Q8_0;
    ctx.err << "lumen-cli: --cache-type takes f16, f32 or q8_0, not '" << option << "'\n";
    return std::nullopt;
}

// --ctx-size, --threads, --gpu-layers and --cache-type, which every command that loads an LLM takes.
struct LoadOptions {
    int ctxSize;
    int threads;
    std::int64_t gpuLayers;
    inference::DType kvType;
};

std::optional<LoadOptions> loadOptions(Context& ctx) {
    const auto ctxSize = numberOption<int>(ctx, "ctx-size", 0, 0, 1 << 20);
    const auto threads = numberOption<int>(ctx, "threads", 0, 0, 256);
    const auto gpuLayers = gpuLayersOption(ctx);
    const auto kvType = cacheTypeOption(ctx);
    if (!ctxSize || !threads || !gpuLayers || !kvType) return std::nullopt;
    return LoadOptions{*ctxSize, *threads, *gpuLayers, *kvType};
}

// Loads the model named by --model for a context of ctxSize tokens (0: the model's, at most
// 4096) on `threads` threads and the GPU (--gpu-layers). nullopt, with the reason printed, when
// it will not fit in free memory; engine errors (bad file, unsupported model) are thrown.
std::optional<LoadedModel> loadForGeneration(Context& ctx, const LoadOptions& options) {
    const auto [ctxSize, threads, gpuLayers, kvType] = options;
    LoadedModel m;
    m.file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(ctx.parser.value(QStringLiteral("model")).toStdString()));
    m.model = inference::LanguageModel::load(m.file);
    m.tokenizer.emplace(inference::Tokenizer::fromGguf(*m.file));
    m.contextSize = ctxSize > 0 ? ctxSize : std::min<std::int64_t>(m.model->config().contextLength, 4096);
    m.kvType = kvType;
    auto placement = placeModel(ctx, *m.model, m.contextSize, threads, gpuLayers, kvType);
    if (!placement) return std::nullopt;
    m.placement = std::move(*placement);
    const auto need = m.model->estimateMemory(m.contextSize, kvType);
    // Weights are mapped from the file, not copied: only the cache of CPU layers takes RAM.
    if (const auto available = inference::availableMemory(); m.placement.gpuLayers == 0 && available && need.total() > *available) {
        ctx.err << "lumen-cli: this model needs about " << QString::fromStdString(inference::formatBytes(need.total()))
                << " (weights " << QString::fromStdString(inference::formatBytes(need.weights)) << ", KV cache "
                << QString::fromStdString(inference::formatBytes(need.kvCache)) << ") but only "
                << QString::fromStdString(inference::formatBytes(*available)) << " is free; try a smaller --ctx-size\n";
        return std::nullopt;
    }
    return m;
}

// The sampling options shared by generate and describe; nullopt (message printed) when one is bad.
std::optional<inference::GenerationParams> generationParams(Context& ctx) {
    inference::GenerationParams params;
    const auto n = numberOption<int>(ctx, "n", 256, 0, 1 << 20);
    const auto temp = numberOption<float>(ctx, "temp", 0.8f, 0.0f, 100.0f);
    const auto topK = numberOption<int>(ctx, "top-k", 40, 0, 1 << 24);
    const auto topP = numberOption<float>(ctx, "top-p", 0.95f, 0.0f, 1.0f);
    const auto minP = numberOption<float>(ctx, "min-p", 0.05f, 0.0f, 1.0f);
    const auto repeat = numberOption<float>(ctx, "repeat-penalty", 1.0f, 0.0f, 10.0f);
    const auto seed = numberOption<double>(ctx, "seed", 0.0, 0.0, 9007199254740992.0);
    if (!n || !temp || !topK || !topP || !minP || !repeat || !seed) return std::nullopt;
    params.maxTokens = *n;
    params.sampling.temperature = *temp;
    params.sampling.topK = *topK;
    params.sampling.topP = *topP;
    params.sampling.minP = *minP;
    params.sampling.repeatPenalty = *repeat;
    params.sampling.seed = static_cast<std::uint64_t>(*seed);
    for (const QString& s : ctx.parser.values(QStringLiteral("stop"))) params.stopStrings.push_back(s.toStdString());
    return params;
}

// --logits-out FILE: every decoded position's logits appended as raw float32.
struct LogitsOut {
    std::ofstream file;
    inference::LogitsCallback callback;
};

bool openLogitsOut(Context& ctx, LogitsOut& out) {
    const QString path = ctx.parser.value(QStringLiteral("logits-out"));
    if (path.isEmpty()) return true;
    out.file.open(path.toStdString(), std::ios::binary | std::ios::trunc);
    if (!out.file) {
        ctx.err << "lumen-cli: cannot write " << path << "\n";
        return false;
    }
    out.callback = [&out](std::span<const float> l) { out.file.write(reinterpret_cast<const char*>(l.data()), static_cast<std::streamsize>(l.size_bytes())); };
    return true;
}

// An image's projected rows and the placeholder ids that stand for them in a prompt.
struct ImageInput {
    std::shared_ptr<const std::vector<float>> rows;
    std::vector<inference::TokenId> placeholders;
    double encodeMs = 0.0;
    bool cached = false;
};

// Reads, decodes and encodes an image through the mmproj, or takes its rows from the cache
// (keyed by the file bytes' SHA-256). nullopt with the reason printed.
std::optional<ImageInput> projectImage(Context& ctx, vision::Mmproj& mmproj, vision::EmbeddingCache& cache, const std::string& modelKey, const QString& path) {
    QString readError;
    const auto read = readUserFile(path, kMaxImageFileBytes, readError);
    if (!read) {
        ctx.err << "lumen-cli: " << path << ": " << readError << "\n";
        return std::nullopt;
    }
    const QByteArray& bytes = *read;
    const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size()));
    const std::string key = storage::sha256Hex(data);
    ImageInput in;
    in.rows = cache.find(modelKey, key);
    in.cached = in.rows != nullptr;
    if (!in.rows) {
        QElapsedTimer timer;
        timer.start();
        try {
            cache.insert(modelKey, key, mmproj.encode(vision::decodeImage(data, {.neededSide = vision::kLargestModelSide})));
        } catch (const vision::ImageError& e) {
            ctx.err << "lumen-cli: " << path << ": " << QString::fromUtf8(e.what()) << "\n";
            return std::nullopt;
        }
        in.rows = cache.find(modelKey, key);
        in.encodeMs = static_cast<double>(timer.nsecsElapsed()) / 1e6;
    }
    in.placeholders = inference::imagePlaceholders(inference::imageRowsKey(modelKey, key), static_cast<std::int64_t>(in.rows->size()) / mmproj.outputWidth());
    return in;
}

void printMetrics(Context& ctx, double loadMs, const inference::GenerationResult& result, const QString& extra = {}) {
    ctx.err << QStringLiteral("\nload %1 ms%9 · prompt %2 tokens (%3 reused) · prefill %4 tokens/s · TTFT %5 ms · %6 tokens at %7 tokens/s · stopped: %8\n")
                   .arg(loadMs, 0, 'f', 1)
                   .arg(result.promptTokens)
                   .arg(result.reusedPromptTokens)
                   .arg(result.prefillTokensPerSecond, 0, 'f', 1)
                   .arg(result.ttftMs, 0, 'f', 1)
                   .arg(result.tokens.size())
                   .arg(result.decodeTokensPerSecond, 0, 'f', 1)
                   .arg(QString::fromLatin1(inference::toString(result.stopReason).data()))
                   .arg(extra);
}

QString imageNote(const ImageInput& in) {
    return in.cached ? QStringLiteral(" · image cached") : QStringLiteral(" · image encode %1 ms").arg(in.encodeMs, 0, 'f', 1);
}

// Generation with images: the LLM's placement also runs the mmproj (its GPU when it has one).
struct Multimodal {
    std::unique_ptr<vision::Mmproj> mmproj;
    vision::EmbeddingCache cache;
    std::string key;
};

std::unique_ptr<Multimodal> openMmproj(Context& ctx, const LoadedModel& loaded) {
    auto m = std::make_unique<Multimodal>();
    const QString path = ctx.parser.value(QStringLiteral("mmproj"));
    inference::Backend& backend = loaded.placement.gpuLayers > 0 ? *loaded.placement.gpu : *loaded.placement.cpu;
    m->mmproj = vision::Mmproj::load(path.toStdString(), backend);
    m->mmproj->checkFits(loaded.model->config().dim, QFileInfo(ctx.parser.value(QStringLiteral("model"))).fileName().toStdString());
    m->key = QFileInfo(path).canonicalFilePath().toStdString();
    return m;
}

int runGenerationErrors(Context& ctx, const std::function<int()>& body) {
    try {
        return body();
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    } catch (const std::length_error& e) {
        return fail(ctx, e, kFailed, {}, QStringLiteral("; use a larger --ctx-size or a shorter prompt"));
    } catch (const std::invalid_argument& e) {
        return fail(ctx, e, kUsage);
    } catch (const std::exception& e) {
        return fail(ctx, e, kFailed, QStringLiteral("generation failed: "));
    }
}

// How a reasoning model's thinking is shown: --reasoning show (the default: on standard error,
// dimmed on a terminal) or hide. Models whose template has no reasoning markers reply as they are.
struct ReasoningOutput {
    std::optional<inference::ReasoningMarkers> markers;
    bool show = true;
};

std::optional<ReasoningOutput> reasoningOption(Context& ctx, const inference::ChatTemplate* chatTemplate) {
    ReasoningOutput out;
    const QString option = ctx.parser.value(QStringLiteral("reasoning")).trimmed().toLower();
    if (option == QLatin1String("hide")) out.show = false;
    else if (!option.isEmpty() && option != QLatin1String("show")) {
        ctx.err << "lumen-cli: --reasoning takes show or hide, not '" << option << "'\n";
        return std::nullopt;
    }
    if (chatTemplate) out.markers = inference::reasoningMarkers(chatTemplate->source());
    return out;
}

// The template variables of --no-think: templates that read enable_thinking (Qwen3) skip the reasoning.
nlohmann::ordered_json templateExtras(Context& ctx) {
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    if (ctx.parser.isSet(QStringLiteral("no-think"))) extra["enable_thinking"] = false;
    return extra;
}

struct Reply {
    inference::GenerationResult result;
    std::string reasoning;  // empty for models that do not reason
    std::string answer;     // the reply without its reasoning
};

// Streams one reply: the answer to ctx.out, the reasoning as ReasoningOutput says; Ctrl+C stops
// it. `promptText` is the rendered prompt (its end may open the reasoning), or empty.
Reply streamReply(Context& ctx, inference::Generator& generator, std::span<const inference::TokenId> prompt, const inference::GenerationParams& params,
                  const LogitsOut& logits, const inference::EmbeddingRows* rows, const ReasoningOutput& reasoning, std::string_view promptText) {
    Reply reply;
    std::optional<inference::ReasoningSplitter> splitter;
    inference::GenerationParams run = params;
    if (reasoning.markers) {
        splitter.emplace(*reasoning.markers, inference::promptOpensReasoning(promptText, *reasoning.markers));
        run.renderSpecial = reasoning.markers->harmony;  // (harmony's message markers are special tokens)
    }
    const bool dim = reasoning.show && isatty(STDERR_FILENO);
    bool thinking = false;  // reasoning printed since the last answer text
    const auto print = [&](const inference::ReasoningSplitter::Pieces& p) {
        if (!p.reasoning.empty()) {
            reply.reasoning += p.reasoning;
            if (reasoning.show) {
                ctx.err << (dim && !thinking ? "\x1b[2m" : "") << QString::fromUtf8(p.reasoning.data(), static_cast<qsizetype>(p.reasoning.size()));
                ctx.err.flush();
                thinking = true;
            }
        }
        if (!p.answer.empty()) {
            if (thinking) ctx.err << (dim ? "\x1b[0m\n" : "\n");
            thinking = false;
            reply.answer += p.answer;
            ctx.out << QString::fromUtf8(p.answer.data(), static_cast<qsizetype>(p.answer.size()));
            ctx.out.flush();
        }
    };
    gInterrupted.store(false);
    const auto previous = std::signal(SIGINT, onInterrupt);
    reply.result = generator.generate(prompt, run, [&](std::string_view piece) {
        if (splitter) print(splitter->feed(piece));
        else print({{}, std::string(piece)});
        return true;
    }, &gInterrupted, logits.callback, rows);
    std::signal(SIGINT, previous);
    if (splitter) print(splitter->finish());
    if (thinking) ctx.err << (dim ? "\x1b[0m\n" : "\n");
    ctx.out << "\n";
    ctx.out.flush();
    return reply;
}

int cmdGenerate(Context& ctx) {
    const QString modelPath = ctx.parser.value(QStringLiteral("model"));
    const bool hasPrompt = ctx.parser.isSet(QStringLiteral("prompt")), hasTokens = ctx.parser.isSet(QStringLiteral("prompt-tokens"));
    if (modelPath.isEmpty() || hasPrompt == hasTokens || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: generate needs --model M.gguf and one of --prompt TEXT or --prompt-tokens 1,2,3\n";
        return kUsage;
    }
    const QStringList images = ctx.parser.values(QStringLiteral("image"));
    if (images.isEmpty() != ctx.parser.value(QStringLiteral("mmproj")).isEmpty()) {
        ctx.err << "lumen-cli: --image and --mmproj go together: --mmproj MMPROJ.gguf --image FILE (the prompt marks where with <image>)\n";
        return kUsage;
    }
    const auto params = generationParams(ctx);
    const auto load = loadOptions(ctx);
    if (!params || !load) return kUsage;
    return runGenerationErrors(ctx, [&]() -> int {
        QElapsedTimer loadTimer;
        loadTimer.start();
        auto loaded = loadForGeneration(ctx, *load);
        if (!loaded) return kFailed;
        const auto& tokenizer = *loaded->tokenizer;
        inference::LanguageSession session(loaded->model, loaded->placement.split(), loaded->contextSize, loaded->kvType);
        ctx.err << "running on " << loaded->placement.describe() << "\n";
        std::unique_ptr<Multimodal> mm;
        if (!images.isEmpty()) mm = openMmproj(ctx, *loaded);
        const double loadMs = static_cast<double>(loadTimer.nsecsElapsed()) / 1e6;

        // Images first: their rows, and the placeholder ids the prompt gets in their place.
        std::vector<ImageInput> inputs;
        std::vector<std::vector<inference::TokenId>> placeholders;
        inference::EmbeddingRows rows;
        QString note;
        for (const QString& path : images) {
            auto in = projectImage(ctx, *mm->mmproj, mm->cache, mm->key, path);
            if (!in) return kFailed;
            for (std::size_t r = 0; r < in->placeholders.size(); ++r)
                rows[in->placeholders[r]] = in->rows->data() + r * static_cast<std::size_t>(mm->mmproj->outputWidth());
            placeholders.push_back(in->placeholders);
            note += imageNote(*in);
            inputs.push_back(std::move(*in));
        }
        std::vector<inference::TokenId> prompt;
        if (hasPrompt) {
            const std::string text = ctx.parser.value(QStringLiteral("prompt")).toStdString();
            prompt = images.isEmpty() ? tokenizer.encode(text, true, false) : inference::spliceImages(tokenizer, text, placeholders, true);
        } else {
            for (const QString& part : ctx.parser.value(QStringLiteral("prompt-tokens")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
                bool ok = false;
                const int id = part.trimmed().toInt(&ok);
                if (!ok || !tokenizer.vocabulary().valid(id)) {
                    ctx.err << "lumen-cli: '" << part << "' is not a token id of this model (0 to " << tokenizer.vocabulary().size() - 1 << ")\n";
                    return kUsage;
                }
                prompt.push_back(id);
            }
            if (!images.isEmpty()) {
                const auto& ids = tokenizer.vocabulary().ids;
                const auto marker = ids.find(std::string(inference::kImageMarker));
                if (marker == ids.end()) {
                    ctx.err << "lumen-cli: this model's vocabulary has no <image> token: give the prompt as --prompt text with <image> where the image goes\n";
                    return kUsage;
                }
                prompt = inference::spliceImages(prompt, marker->second, placeholders);
            }
        }
        LogitsOut logits;
        if (!openLogitsOut(ctx, logits)) return kFailed;
        // The prompt is echoed (images as their marker), then the reply streams.
        std::vector<inference::TokenId> text;
        for (auto t : prompt)
            if (t >= 0) text.push_back(t);
        ctx.out << QString::fromStdString(tokenizer.decode(text));
        ctx.out.flush();
        inference::Generator generator(session, tokenizer);
        // Only the template's reasoning markers matter here: one that does not parse has none.
        std::optional<inference::ChatTemplate> chatTemplate;
        try {
            chatTemplate = inference::ChatTemplate::fromGguf(*loaded->file);
        } catch (const inference::jinja::TemplateError&) {
        }
        const auto reasoning = reasoningOption(ctx, chatTemplate ? &*chatTemplate : nullptr);
        if (!reasoning) return kUsage;
        const std::string promptText = hasPrompt ? ctx.parser.value(QStringLiteral("prompt")).toStdString() : std::string();
        const auto reply = streamReply(ctx, generator, prompt, *params, logits, rows.empty() ? nullptr : &rows, *reasoning, promptText);
        printMetrics(ctx, loadMs, reply.result, note);
        return kOk;
    });
}

int cmdDescribe(Context& ctx) {
    if (ctx.parser.value(QStringLiteral("model")).isEmpty() || ctx.parser.value(QStringLiteral("mmproj")).isEmpty() || ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: describe needs --model LLM.gguf --mmproj MMPROJ.gguf and image files: lumen-cli describe --model M.gguf --mmproj P.gguf "
                   "[--prompt \"Describe this image.\"] IMAGE...\n";
        return kUsage;
    }
    const auto params = generationParams(ctx);
    const auto load = loadOptions(ctx);
    if (!params || !load) return kUsage;
    const std::string question = ctx.parser.isSet(QStringLiteral("prompt")) ? ctx.parser.value(QStringLiteral("prompt")).toStdString() : "Describe this image.";
    return runGenerationErrors(ctx, [&]() -> int {
        QElapsedTimer loadTimer;
        loadTimer.start();
        auto loaded = loadForGeneration(ctx, *load);
        if (!loaded) return kFailed;
        auto mm = openMmproj(ctx, *loaded);
        const auto& tokenizer = *loaded->tokenizer;
        const auto& vocab = tokenizer.vocabulary();
        // The model's chat template, else LLaVA 1.5's turns (--builtin picks another).
        std::optional<inference::ChatTemplate> chatTemplate;
        if (const QString builtin = ctx.parser.value(QStringLiteral("builtin")); !builtin.isEmpty()) chatTemplate = inference::ChatTemplate::builtin(builtin.toStdString());
        else chatTemplate = inference::ChatTemplate::fromGguf(*loaded->file);
        if (!chatTemplate) chatTemplate = inference::ChatTemplate::builtin("llava");
        const auto reasoning = reasoningOption(ctx, &*chatTemplate);
        if (!reasoning) return kUsage;
        const auto extras = templateExtras(ctx);
        inference::LanguageSession session(loaded->model, loaded->placement.split(), loaded->contextSize, loaded->kvType);
        inference::Generator generator(session, tokenizer);
        ctx.err << "running on " << loaded->placement.describe() << "; " << QString::fromStdString(mm->mmproj->description()) << "; template "
                << QString::fromStdString(chatTemplate->name()) << "\n";
        const double loadMs = static_cast<double>(loadTimer.nsecsElapsed()) / 1e6;
        LogitsOut logits;
        if (!openLogitsOut(ctx, logits)) return kFailed;
        const std::string bosText = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
        int failures = 0;
        for (const QString& path : ctx.positional) {
            auto in = projectImage(ctx, *mm->mmproj, mm->cache, mm->key, path);
            if (!in) {
                ++failures;
                continue;
            }
            nlohmann::ordered_json messages = nlohmann::ordered_json::array();
            if (const QString system = ctx.parser.value(QStringLiteral("system")); !system.isEmpty())
                messages.push_back({{"role", "system"}, {"content", system.toStdString()}});
            messages.push_back({{"role", "user"}, {"content", {{{"type", "image"}}, {{"type", "text"}, {"text", "\n" + question}}}}});
            std::string rendered = chatTemplate->apply(messages, true, &vocab, extras);
            if (rendered.find(inference::kImageMarker) == std::string::npos) {
                // A text-only template: the marker goes into the message text.
                messages.back()["content"] = std::string(inference::kImageMarker) + "\n" + question;
                rendered = chatTemplate->apply(messages, true, &vocab, extras);
            }
            const bool templateHasBos = !bosText.empty() && rendered.rfind(bosText, 0) == 0;
            const auto prompt = inference::spliceImages(tokenizer, rendered, {in->placeholders}, !templateHasBos);
            inference::EmbeddingRows rows;
            for (std::size_t r = 0; r < in->placeholders.size(); ++r)
                rows[in->placeholders[r]] = in->rows->data() + r * static_cast<std::size_t>(mm->mmproj->outputWidth());
            ctx.out << path << ":\n";
            ctx.out.flush();
            const auto reply = streamReply(ctx, generator, prompt, *params, logits, &rows, *reasoning, rendered);
            printMetrics(ctx, loadMs, reply.result, imageNote(*in));
            if (reply.result.stopReason == inference::StopReason::Cancelled) break;
        }
        return failures ? kFailed : kOk;
    });
}

int cmdBench(Context& ctx) {
    const QString modelPath = ctx.parser.value(QStringLiteral("model"));
    if (modelPath.isEmpty() || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: bench needs --model M.gguf [-p 512] [-n 128] [-t 1,2] [-r 3] [--gpu-layers N]\n";
        return kUsage;
    }
    const auto prefill = numberOption<int>(ctx, "p", 512, 0, 1 << 16);
    const auto decode = numberOption<int>(ctx, "n", 128, 0, 1 << 16);
    const auto repetitions = numberOption<int>(ctx, "r", 3, 1, 1000);
    const auto gpuLayers = gpuLayersOption(ctx);
    if (!prefill || !decode || !repetitions || !gpuLayers) return kUsage;
    std::vector<int> threads;
    for (const QString& t : ctx.parser.value(QStringLiteral("t")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        bool ok = false;
        const int n = t.trimmed().toInt(&ok);
        if (!ok || n < 1 || n > 256) {
            ctx.err << "lumen-cli: -t takes thread counts like 1,2, not '" << t << "'\n";
            return kUsage;
        }
        threads.push_back(n);
    }
    if (threads.empty()) threads.push_back(inference::cpuFeatures().physicalCores);
    try {
        auto file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(modelPath.toStdString()));
        const auto model = inference::LanguageModel::load(file);
        const auto& c = model->config();
        const std::int64_t contextSize = *prefill + *decode + 2;
        auto placement = placeModel(ctx, *model, std::max<std::int64_t>(contextSize, 16), threads.front(), *gpuLayers);
        if (!placement) return kFailed;
        // Decoding reads every weight once per token: compare with the bandwidth of the memory
        // the weights sit in (the GPU's peak when all layers are there, else RAM's: read before
        // each run, and the best reading so far taken as what the machine can do, since a busy
        // moment can only lower a reading).
        const bool allOnGpu = placement->gpuLayers == c.nLayers;
        const auto devices = inference::queryComputeDevices();
        const double gpuPeak = allOnGpu && !devices.gpus.empty() ? devices.gpus.front().memoryBandwidth : 0.0;
        std::unique_ptr<inference::ReadBandwidthProbe> probe;
        if (!allOnGpu) probe = std::make_unique<inference::ReadBandwidthProbe>(*std::max_element(threads.begin(), threads.end()));
        const auto perToken = inference::weightBytesPerToken(*model);
        ctx.out << QString::fromStdString(c.architecture) << " dim " << c.dim << ", " << c.nLayers << " layers, " << c.nHeads << "/"
                << c.nKvHeads << " heads, FFN " << c.ffnDim << ", vocab " << c.vocabSize << "; "
                << QString::fromStdString(inference::formatBytes(perToken)) << " of weights read per token\n";
        if (allOnGpu)
            ctx.out << "GPU memory bandwidth (peak, from clock and bus width): " << QString::number(gpuPeak / 1e9, 'f', 1) << " GB/s\n";
        ctx.out << "each figure: mean +- standard deviation of " << *repetitions << (*repetitions == 1 ? " run" : " runs")
                << (allOnGpu ? "" : "; RAM bandwidth read before each run, the share taken of the best reading so far") << "\n";
        const auto spread = [](const std::vector<double>& v, int width, int decimals, QStringView unit = {}) {
            const auto s = inference::spreadOf(v);
            return QStringLiteral("%1%3 +- %2%3").arg(s.mean, 0, 'f', decimals).arg(s.sd, 0, 'f', decimals).arg(unit).rightJustified(width);
        };
        ctx.out << QStringLiteral("%1  %2  %3  %4  %5  %6  %7\n")
                       .arg("threads", 7)
                       .arg(QStringLiteral("prefill t/s (p%1)").arg(*prefill), 18)
                       .arg(QStringLiteral("TTFT ms"), 16)
                       .arg(QStringLiteral("decode t/s (n%1)").arg(*decode), 17)
                       .arg("weights GB/s", 14)
                       .arg(allOnGpu ? "GPU peak GB/s" : "RAM GB/s", 14)
                       .arg("of bandwidth", 12);
        QStringList backends;
        double bestBandwidth = 0;
        for (std::size_t i = 0; i < threads.size(); ++i) {
            const int t = threads[i];
            // One GPU backend serves every thread count; the CPU side is made per count.
            if (i > 0) placement->cpu = inference::makeCpuBackend({.threads = t});
            std::vector<double> prefillRate, ttft, decodeRate, weightRate, bandwidth;
            // Progress on standard error (a big model's run takes minutes): each run's number as it ends.
            ctx.err << "bench: " << t << (t == 1 ? " thread, run" : " threads, run");
            ctx.err.flush();
            for (int rep = 0; rep < *repetitions; ++rep) {
                const double b = probe ? probe->measure() : gpuPeak;
                const auto run = inference::benchmark(model, placement->split(), *prefill, *decode);
                backends << QString::fromStdString(run.backend);
                prefillRate.push_back(run.prefillTokensPerSecond);
                ttft.push_back(run.prefillSeconds * 1000.0);
                decodeRate.push_back(run.decodeTokensPerSecond);
                weightRate.push_back(run.weightBytesPerSecond / 1e9);
                bandwidth.push_back(b / 1e9);
                bestBandwidth = std::max(bestBandwidth, b);
                ctx.err << " " << rep + 1;
                ctx.err.flush();
            }
            ctx.err << " of " << *repetitions << " done\n";
            // The share: the mean decode rate (and its deviation) over the best bandwidth reading.
            std::vector<double> share;
            if (bestBandwidth > 0)
                for (const double r : weightRate) share.push_back(100.0 * r * 1e9 / bestBandwidth);
            ctx.out << QStringLiteral("%1  %2  %3  %4  %5  %6  %7\n")
                           .arg(t, 7)
                           .arg(spread(prefillRate, 18, 1))
                           .arg(spread(ttft, 16, 1))
                           .arg(spread(decodeRate, 17, 1))
                           .arg(spread(weightRate, 14, 2))
                           .arg(spread(bandwidth, 14, 1))
                           .arg(share.empty() ? QStringLiteral("-").rightJustified(12) : spread(share, 12, 0, u"%"));
            ctx.out.flush();
        }
        backends.removeDuplicates();
        ctx.out << "backends: " << backends.join(QStringLiteral("; ")) << "\n";
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    } catch (const std::exception& e) {
        return fail(ctx, e, kFailed, QStringLiteral("bench failed: "));
    }
    return kOk;
}

int cmdChat(Context& ctx) {
    const QString modelPath = ctx.parser.value(QStringLiteral("model"));
    if (modelPath.isEmpty() || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: chat needs --model M.gguf [--system TEXT] [--builtin NAME] [-n N] [--temp T] ...\n";
        return kUsage;
    }
    const auto n = numberOption<int>(ctx, "n", 512, 1, 1 << 20);
    const auto temp = numberOption<float>(ctx, "temp", 0.8f, 0.0f, 100.0f);
    const auto seed = numberOption<double>(ctx, "seed", 0.0, 0.0, 9007199254740992.0);
    const auto load = loadOptions(ctx);
    if (!n || !temp || !seed || !load) return kUsage;
    try {
        auto loaded = loadForGeneration(ctx, *load);
        if (!loaded) return kFailed;
        const auto& tokenizer = *loaded->tokenizer;
        const auto& model = loaded->model;
        const auto& file = loaded->file;
        std::optional<inference::ChatTemplate> chatTemplate;
        if (const QString builtin = ctx.parser.value(QStringLiteral("builtin")); !builtin.isEmpty())
            chatTemplate = inference::ChatTemplate::builtin(builtin.toStdString());
        else
            chatTemplate = inference::ChatTemplate::fromGguf(*file);
        if (!chatTemplate) {
            ctx.err << "lumen-cli: " << modelPath << " has no chat template; choose one with --builtin NAME (";
            for (auto name : inference::ChatTemplate::builtinNames()) ctx.err << " " << QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
            ctx.err << " )\n";
            return kFailed;
        }
        const auto reasoning = reasoningOption(ctx, &*chatTemplate);
        if (!reasoning) return kUsage;
        const auto extras = templateExtras(ctx);
        inference::LanguageSession session(model, loaded->placement.split(), loaded->contextSize, loaded->kvType);
        inference::Generator generator(session, tokenizer);
        inference::GenerationParams params;
        params.maxTokens = *n;
        params.sampling.temperature = *temp;
        params.sampling.seed = static_cast<std::uint64_t>(*seed);

        nlohmann::ordered_json messages = nlohmann::ordered_json::array();
        const QString system = ctx.parser.value(QStringLiteral("system"));
        auto reset = [&] {
            messages = nlohmann::ordered_json::array();
            if (!system.isEmpty()) messages.push_back({{"role", "system"}, {"content", system.toStdString()}});
        };
        reset();
        const auto& vocab = tokenizer.vocabulary();
        const std::string bosText = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
        ctx.err << "Chatting with " << QString::fromStdString(model->config().architecture) << " (" << QString::fromStdString(chatTemplate->name())
                << ") on " << loaded->placement.describe() << ". /reset starts over, /exit or Ctrl+D ends.\n";
        while (true) {
            ctx.err << "> ";
            ctx.err.flush();
            QString line;
            if (!ctx.in->readLineInto(&line)) break;
            line = line.trimmed();
            if (line.isEmpty()) continue;
            if (line == QLatin1String("/exit")) break;
            if (line == QLatin1String("/reset")) {
                reset();
                continue;
            }
            messages.push_back({{"role", "user"}, {"content", line.toStdString()}});
            const std::string prompt = chatTemplate->apply(messages, true, &vocab, extras);
            // The template usually writes the BOS itself; add it only when it did not.
            const bool templateHasBos = !bosText.empty() && prompt.rfind(bosText, 0) == 0;
            const auto tokens = tokenizer.encode(prompt, !templateHasBos, true);
            const auto reply = streamReply(ctx, generator, tokens, params, {}, nullptr, *reasoning, prompt);
            const auto& result = reply.result;
            ctx.err << QStringLiteral("[%1 tokens, %2 reused · TTFT %3 ms · %4 tokens/s · %5]\n")
                           .arg(result.promptTokens)
                           .arg(result.reusedPromptTokens)
                           .arg(result.ttftMs, 0, 'f', 0)
                           .arg(result.decodeTokensPerSecond, 0, 'f', 1)
                           .arg(QString::fromLatin1(inference::toString(result.stopReason).data()));
            // The answer alone, its reasoning beside it for the templates that pass it on.
            nlohmann::ordered_json answer{{"role", "assistant"}, {"content", reasoning->markers ? reply.answer : result.text}};
            if (!reply.reasoning.empty()) answer["reasoning_content"] = reply.reasoning;
            messages.push_back(std::move(answer));
        }
    } catch (const inference::jinja::TemplateError& e) {
        return fail(ctx, e, kFailed, QStringLiteral("the chat template failed: "));
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    } catch (const std::length_error& e) {
        return fail(ctx, e, kFailed, {}, QStringLiteral("; start over with /reset or use a larger --ctx-size"));
    } catch (const std::exception& e) {
        return fail(ctx, e);
    }
    return kOk;
}

struct Command {
    const char* summary;
    std::function<int(Context&)> run;
};

const std::map<QString, Command>& commands() {
    static const std::map<QString, Command> table = {
        {QStringLiteral("info"), {"CPU features and kernel set, GPUs and where the database is", cmdInfo}},
        {QStringLiteral("bench"), {"prefill and decode speed: bench --model M.gguf [-p 512] [-n 128] [-t 1,2] [-r 3] [--gpu-layers N]", cmdBench}},
        {QStringLiteral("generate"), {"generate text: generate --model M.gguf (--prompt TEXT | --prompt-tokens 1,2,3) [-n N] [--temp T] ...", cmdGenerate}},
        {QStringLiteral("describe"), {"describe images: describe --model LLM.gguf --mmproj MMPROJ.gguf [--prompt TEXT] IMAGE...", cmdDescribe}},
        {QStringLiteral("template"), {"render a chat template: template (--model M.gguf | --file T.jinja | --builtin NAME) --context C.json", cmdTemplate}},
        {QStringLiteral("tokenize"), {"text to token ids: tokenize --model M.gguf [--ids] [--no-bos] [--parse-special] TEXT", cmdTokenize}},
        {QStringLiteral("inspect"), {"describe a GGUF or safetensors model: inspect MODEL [--tensor NAME --dump OUT.f32]", cmdInspect}},
        {QStringLiteral("chat"), {"interactive chat with a model: chat --model M.gguf [--system TEXT] [--builtin NAME]", cmdChat}},
        {QStringLiteral("chats"), {"list the stored chats", cmdChats}},
        {QStringLiteral("export"), {"export a chat as Markdown or JSON: export CHAT_ID [--format md|json] [--output FILE]", cmdExport}},
        {QStringLiteral("import"), {"import a chat exported as JSON: import FILE", cmdImport}},
        {QStringLiteral("search"), {"full-text search over chats: search WORDS...", cmdSearch}},
        {QStringLiteral("restore"), {"put the newest backup in place of a damaged database: restore [--force]", cmdRestore}},
        {QStringLiteral("embed"), {"image and text embeddings: embed --model DIR (--image FILE | --text TEXT)... [--normalize] [--json]", cmdEmbed}},
        {QStringLiteral("classify"),
         {"classify images: classify --model DIR [--labels \"a,b\"] [--template T]... [--examples DIR] [--top-k K] IMAGE...", cmdClassify}},
        {QStringLiteral("eval"), {"accuracy, precision/recall/F1 and confusion matrix on TEST_DIR/<label>/ images: eval --model DIR ... TEST_DIR", cmdEval}},
    };
    return table;
}

QString usage(const QCommandLineParser& parser) {
    QString text = QStringLiteral("Usage: lumen-cli COMMAND [options] [arguments]\n\nCommands:\n");
    for (const auto& [name, command] : commands())
        text += QStringLiteral("  %1  %2\n").arg(name, -9).arg(QString::fromUtf8(command.summary));
    text += QLatin1Char('\n') + parser.helpText().section(QLatin1Char('\n'), 2);
    return text;
}

}  // namespace

int runCli(const QStringList& args, QTextStream& out, QTextStream& err, QTextStream* in) {
    QCommandLineParser parser;
    parser.setSingleDashWordOptionMode(QCommandLineParser::ParseAsLongOptions);
    parser.addOptions({
        {{QStringLiteral("h"), QStringLiteral("help")}, QStringLiteral("Show this help.")},
        {QStringLiteral("version"), QStringLiteral("Show the version.")},
        {QStringLiteral("database"), QStringLiteral("Use this database file."), QStringLiteral("FILE")},
        {QStringLiteral("data-dir"), QStringLiteral("Keep the database in this folder."), QStringLiteral("DIR")},
        {QStringLiteral("format"), QStringLiteral("Export format: md or json (default md)."), QStringLiteral("FORMAT"),
         QStringLiteral("md")},
        {QStringLiteral("tensor"), QStringLiteral("inspect: the tensor to dump."), QStringLiteral("NAME")},
        {QStringLiteral("model"), QStringLiteral("The model to use: a GGUF file, or a CLIP/DINOv2 folder for embed, classify, eval."),
         QStringLiteral("PATH")},
        {QStringLiteral("file"), QStringLiteral("template: a Jinja template file."), QStringLiteral("FILE")},
        {QStringLiteral("prompt"), QStringLiteral("generate: the prompt text (BOS is added as the model asks)."), QStringLiteral("TEXT")},
        {QStringLiteral("prompt-tokens"), QStringLiteral("generate: the prompt as token ids, comma-separated."), QStringLiteral("IDS")},
        {QStringLiteral("n"), QStringLiteral("generate: tokens to generate at most (default 256); bench: tokens to decode (128)."), QStringLiteral("N")},
        {QStringLiteral("p"), QStringLiteral("bench: prompt tokens to prefill (default 512)."), QStringLiteral("N")},
        {QStringLiteral("t"), QStringLiteral("bench: thread counts, comma-separated (default: physical cores)."), QStringLiteral("LIST")},
        {QStringLiteral("r"), QStringLiteral("bench: repetitions per thread count (default 3)."), QStringLiteral("N")},
        {QStringLiteral("temp"), QStringLiteral("generate: temperature; 0 is greedy (default 0.8)."), QStringLiteral("T")},
        {QStringLiteral("top-k"), QStringLiteral("generate: keep the K most likely tokens; 0 is off (default 40). classify: labels shown (5)."),
         QStringLiteral("K")},
        {QStringLiteral("image"), QStringLiteral("embed, generate: an image file (repeatable)."), QStringLiteral("FILE")},
        {QStringLiteral("mmproj"), QStringLiteral("describe, generate: the image projector (llama.cpp mmproj GGUF) paired with --model."), QStringLiteral("FILE")},
        {QStringLiteral("text"), QStringLiteral("embed: a text (repeatable; CLIP)."), QStringLiteral("TEXT")},
        {QStringLiteral("normalize"), QStringLiteral("embed: print unit-length embeddings.")},
        {QStringLiteral("json"), QStringLiteral("embed, classify: print JSON.")},
        {QStringLiteral("labels"), QStringLiteral("classify, eval: the labels, comma-separated (zero-shot with CLIP)."), QStringLiteral("LIST")},
        {QStringLiteral("template"), QStringLiteral("classify, eval: a prompt template such as \"a photo of a {}.\" (repeatable; default: an ensemble of 10)."),
         QStringLiteral("T")},
        {QStringLiteral("examples"), QStringLiteral("classify, eval: labelled example images, one sub-folder per label (few-shot)."), QStringLiteral("DIR")},
        {QStringLiteral("alpha"), QStringLiteral("classify, eval: weight of the examples against the labels' prompts (Tip-Adapter; default 1)."), QStringLiteral("A")},
        {QStringLiteral("beta"), QStringLiteral("classify, eval: sharpness of the examples' affinities (Tip-Adapter; default 5.5)."), QStringLiteral("B")},
        {QStringLiteral("device"), QStringLiteral("embed, classify, eval: auto (the GPU when usable; default), cpu or gpu."), QStringLiteral("DEVICE")},
        {QStringLiteral("top-p"), QStringLiteral("generate: nucleus sampling; 1 is off (default 0.95)."), QStringLiteral("P")},
        {QStringLiteral("min-p"), QStringLiteral("generate: drop tokens below P times the best; 0 is off (default 0.05)."), QStringLiteral("P")},
        {QStringLiteral("repeat-penalty"), QStringLiteral("generate: penalty for the last 64 tokens; 1 is off (default 1)."), QStringLiteral("R")},
        {QStringLiteral("seed"), QStringLiteral("generate: random seed (default 0)."), QStringLiteral("S")},
        {QStringLiteral("ctx-size"), QStringLiteral("generate, chat: context size in tokens (default: the model's, at most 4096)."), QStringLiteral("N")},
        {QStringLiteral("reasoning"), QStringLiteral("generate, chat, describe: a reasoning model's thinking: show (on standard error; default) or hide."),
         QStringLiteral("MODE")},
        {QStringLiteral("no-think"), QStringLiteral("chat, describe: ask models whose template reads enable_thinking (Qwen3) not to reason.")},
        {QStringLiteral("cache-type"), QStringLiteral("generate, chat, describe: KV cache precision: f16 (default), f32 or q8_0."), QStringLiteral("TYPE")},
        {QStringLiteral("threads"), QStringLiteral("generate, chat, embed, classify, eval: CPU threads (default: the physical cores)."),
         QStringLiteral("N")},
        {QStringLiteral("gpu-layers"), QStringLiteral("generate, chat, bench: layers to run on the GPU: auto (default: all that fit), all, or N."),
         QStringLiteral("N")},
        {QStringLiteral("stop"), QStringLiteral("generate: stop when this text appears (repeatable)."), QStringLiteral("TEXT")},
        {QStringLiteral("logits-out"), QStringLiteral("generate: write every position's logits as raw float32 to FILE."), QStringLiteral("FILE")},
        {QStringLiteral("builtin"), QStringLiteral("template, chat, describe: a built-in chat template by name."), QStringLiteral("NAME")},
        {QStringLiteral("system"), QStringLiteral("chat, describe: the system prompt."), QStringLiteral("TEXT")},
        {QStringLiteral("context"), QStringLiteral("template: the JSON object of the template's variables."), QStringLiteral("FILE")},
        {QStringLiteral("ids"), QStringLiteral("tokenize: print only the ids.")},
        {QStringLiteral("no-bos"), QStringLiteral("tokenize: do not add the beginning-of-sequence token.")},
        {QStringLiteral("parse-special"), QStringLiteral("tokenize: turn special-token text such as <|im_start|> into its id.")},
        {QStringLiteral("dump"), QStringLiteral("inspect: write the tensor as raw float32 to FILE."), QStringLiteral("FILE")},
        {QStringLiteral("no-metadata"), QStringLiteral("inspect: leave out the metadata listing.")},
        {QStringLiteral("no-tensors"), QStringLiteral("inspect: leave out the tensor table.")},
        {QStringLiteral("force"), QStringLiteral("restore: replace a database that passes its check too.")},
        {{QStringLiteral("o"), QStringLiteral("output")}, QStringLiteral("Write to FILE instead of standard output."),
         QStringLiteral("FILE")},
    });
    if (!parser.parse(args)) {
        err << "lumen-cli: " << parser.errorText() << "\n\n" << usage(parser);
        return kUsage;
    }
    if (parser.isSet(QStringLiteral("version"))) {
        out << "lumen-cli " << LUMEN_VERSION_STRING << "\n";
        return kOk;
    }
    QStringList positional = parser.positionalArguments();
    if (parser.isSet(QStringLiteral("help")) || positional.isEmpty()) {
        (positional.isEmpty() && !parser.isSet(QStringLiteral("help")) ? err : out) << usage(parser);
        return parser.isSet(QStringLiteral("help")) ? kOk : kUsage;
    }
    const QString name = positional.takeFirst();
    const auto it = commands().find(name);
    if (it == commands().end()) {
        err << "lumen-cli: unknown command '" << name << "'\n\n" << usage(parser);
        return kUsage;
    }
    QTextStream standardInput(stdin);
    Context ctx{parser, positional, out, err, in ? in : &standardInput};
    int status = kFailed;
    try {
        status = it->second.run(ctx);
    } catch (const storage::Error& e) {
        // A damaged database (corrupt pages, a dropped table, a row the schema does not allow)
        // ends the command with its reason, not an abort.
        err << "lumen-cli: the database cannot be read: " << QString::fromUtf8(e.what())
            << "\n(restore lumen.db from a backup beside it, or point --database at another file)\n";
    } catch (const std::exception& e) {
        err << "lumen-cli: " << name << " failed: " << QString::fromUtf8(e.what()) << "\n";
    }
    out.flush();
    err.flush();
    return status;
}

}  // namespace lumen::app::cli
