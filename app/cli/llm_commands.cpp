// lumen-cli's commands that run a language model: generate, describe, bench, chat. Loading, placement,
// projectors, image rows and prompt tokens go through the LLM host, as in the app.
#include "app/cli/commands.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>
#include <unistd.h>

#include "app/llm_host.h"
#include "app/openai_server.h"
#include "app/prompt_builder.h"
#include "app/read_file.h"
#include "inference/core/backend.h"
#include "inference/core/compute_devices.h"
#include "inference/core/cpu_features.h"
#include "inference/formats/format_error.h"
#include "inference/llm/benchmark.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/generator.h"
#include "inference/llm/multimodal.h"
#include "inference/llm/reasoning.h"
#include "storage/sha256.h"
#include "vision/embedding_cache.h"
#include "vision/image_decode.h"
#include "vision/mmproj.h"
#include "vision/vision_model.h"

namespace lumen::app::cli {
namespace {

// Ctrl+C during generation stops the reply (and prints the metrics) instead of killing the process.
std::atomic<bool> gInterrupted{false};
extern "C" void onInterrupt(int) { gInterrupted.store(true); }

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

// Loads --model as the options say (the host's one rule for context, cache and placement) and
// prints what the user should know about where it runs. Errors are thrown: runGenerationErrors
// and the commands' own handlers print them.
LoadedLlm loadModel(Context& ctx, const LoadOptions& options, bool templateRequired) {
    auto loaded = loadLlm(openLlm(ctx.parser.value(QStringLiteral("model")).toStdString(), templateRequired),
                          {.contextSize = options.ctxSize, .threads = options.threads, .gpuLayers = options.gpuLayers, .kvType = options.kvType});
    for (const auto& note : loaded.placement.notes) ctx.err << "lumen-cli: " << QString::fromStdString(note) << "\n";
    return loaded;
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

// Reads an image file and takes its rows through the projector (from the cache when it has them,
// keyed by the file bytes' SHA-256). nullopt with the reason printed.
std::optional<ImageRows> readImage(Context& ctx, const Projector& projector, vision::EmbeddingCache& cache, const QString& path) {
    QString readError;
    const auto read = readUserFile(path, kMaxImageFileBytes, readError);
    if (!read) {
        ctx.err << "lumen-cli: " << path << ": " << readError << "\n";
        return std::nullopt;
    }
    const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(read->constData()), static_cast<std::size_t>(read->size()));
    try {
        return projectImage(projector, cache, data, storage::sha256Hex(data));
    } catch (const vision::ImageError& e) {
        ctx.err << "lumen-cli: " << path << ": " << QString::fromUtf8(e.what()) << "\n";
        return std::nullopt;
    }
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

QString imageNote(const ImageRows& in) {
    return in.cached ? QStringLiteral(" · image cached") : QStringLiteral(" · image encode %1 ms").arg(in.encodeMs, 0, 'f', 1);
}

Projector openMmproj(Context& ctx, const LoadedLlm& loaded) {
    auto projector = openProjector(ctx.parser.value(QStringLiteral("mmproj")).toStdString(), loaded);
    for (const auto& note : projector.notes) ctx.err << "lumen-cli: " << QString::fromStdString(note) << "\n";
    return projector;
}

// A model that cannot be placed as asked: what it needs, and the option that helps.
int failToFit(Context& ctx, const FitError& e) {
    return e.kind() == FitError::Kind::Memory ? fail(ctx, e, kFailed, QStringLiteral("the model does not fit: "), QStringLiteral("; try a smaller --ctx-size"))
                                              : fail(ctx, e);
}

// The generation commands' errors as messages and exit statuses; `lengthHint` says what helps when
// a prompt does not fit the context.
int runGenerationErrors(Context& ctx, const std::function<int()>& body,
                        const QString& lengthHint = QStringLiteral("; use a larger --ctx-size or a shorter prompt")) {
    try {
        return body();
    } catch (const inference::jinja::TemplateError& e) {
        return fail(ctx, e, kFailed, QStringLiteral("the chat template failed: "));
    } catch (const inference::FormatError& e) {
        return fail(ctx, e);
    } catch (const FitError& e) {
        return failToFit(ctx, e);
    } catch (const std::length_error& e) {
        return fail(ctx, e, kFailed, {}, lengthHint);
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

}  // namespace

void chatLoop(Context& ctx, const QString& banner, const std::function<void(nlohmann::ordered_json& messages)>& turn) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    const QString system = ctx.parser.value(QStringLiteral("system"));
    const auto reset = [&] {
        messages = nlohmann::ordered_json::array();
        if (!system.isEmpty()) messages.push_back({{"role", "system"}, {"content", system.toStdString()}});
    };
    reset();
    ctx.err << "Chatting with " << banner << ". /reset starts over, /exit or Ctrl+D ends.\n";
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
        turn(messages);
    }
}

int cmdGenerate(Context& ctx) {
    if (ctx.parser.isSet(QStringLiteral("remote"))) {
        const auto params = generationParams(ctx);
        return params ? remoteGenerate(ctx, *params) : kUsage;
    }
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
        // Only the template's reasoning markers matter here: one that does not parse has none.
        const auto loaded = loadModel(ctx, *load, false);
        const auto& tokenizer = *loaded.llm.tokenizer;
        const auto session = loaded.newSession();
        ctx.err << "running on " << QString::fromStdString(loaded.placement.describe()) << "\n";
        std::optional<Projector> projector;
        if (!images.isEmpty()) projector = openMmproj(ctx, loaded);
        const double loadMs = static_cast<double>(loadTimer.nsecsElapsed()) / 1e6;

        // Images first: their rows, and the placeholder ids the prompt gets in their place.
        std::vector<ImageRows> inputs;
        std::vector<std::vector<inference::TokenId>> placeholders;
        inference::EmbeddingRows rows;
        vision::EmbeddingCache cache;
        QString note;
        for (const QString& path : images) {
            auto in = readImage(ctx, *projector, cache, path);
            if (!in) return kFailed;
            addRows(*projector, *in, rows);
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
        inference::Generator generator(*session, tokenizer);
        const auto reasoning = reasoningOption(ctx, loaded.llm.chatTemplate ? &*loaded.llm.chatTemplate : nullptr);
        if (!reasoning) return kUsage;
        const std::string promptText = hasPrompt ? ctx.parser.value(QStringLiteral("prompt")).toStdString() : std::string();
        const auto reply = streamReply(ctx, generator, prompt, *params, logits, rows.empty() ? nullptr : &rows, *reasoning, promptText);
        printMetrics(ctx, loadMs, reply.result, note);
        return kOk;
    });
}

int cmdDescribe(Context& ctx) {
    if (ctx.parser.isSet(QStringLiteral("remote"))) {
        const auto params = generationParams(ctx);
        return params ? remoteDescribe(ctx, *params) : kUsage;
    }
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
        const auto loaded = loadModel(ctx, *load, !ctx.parser.isSet(QStringLiteral("builtin")));
        const auto projector = openMmproj(ctx, loaded);
        const auto& tokenizer = *loaded.llm.tokenizer;
        // The model's chat template, else LLaVA 1.5's turns (--builtin picks another), rendered as
        // the app renders a chat: the image as a part before the text, or as a marker in the text.
        const QString builtin = ctx.parser.value(QStringLiteral("builtin"));
        const PromptRenderer renderer(builtin.isEmpty() ? loaded.llm.templateOr("llava") : inference::ChatTemplate::builtin(builtin.toStdString()),
                                      loaded.llm.tokenizer);
        const auto reasoning = reasoningOption(ctx, &renderer.chatTemplate());
        if (!reasoning) return kUsage;
        const auto extras = templateExtras(ctx);
        const auto session = loaded.newSession();
        inference::Generator generator(*session, tokenizer);
        ctx.err << "running on " << QString::fromStdString(loaded.placement.describe()) << "; " << QString::fromStdString(projector.mmproj->description())
                << "; template " << QString::fromStdString(renderer.chatTemplate().name()) << "\n";
        const double loadMs = static_cast<double>(loadTimer.nsecsElapsed()) / 1e6;
        LogitsOut logits;
        if (!openLogitsOut(ctx, logits)) return kFailed;
        vision::EmbeddingCache cache;
        int failures = 0;
        for (const QString& path : ctx.positional) {
            auto in = readImage(ctx, projector, cache, path);
            if (!in) {
                ++failures;
                continue;
            }
            nlohmann::ordered_json messages = nlohmann::ordered_json::array();
            if (const QString system = ctx.parser.value(QStringLiteral("system")); !system.isEmpty())
                messages.push_back({{"role", "system"}, {"content", system.toStdString()}});
            messages.push_back({{"role", "user"}, {"content", question}, {"images", {path.toStdString()}}});
            const std::string rendered = renderer.render(messages, extras);
            const auto prompt = promptTokens(tokenizer, rendered, {in->placeholders});
            inference::EmbeddingRows rows;
            addRows(projector, *in, rows);
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
        auto placement = placeLlm(*model, {.contextSize = std::max<std::int64_t>(contextSize, 16), .threads = threads.front(), .gpuLayers = *gpuLayers});
        for (const auto& note : placement.notes) ctx.err << "lumen-cli: " << QString::fromStdString(note) << "\n";
        // Decoding reads every weight once per token: compare with the bandwidth of the memory
        // the weights sit in (the GPU's peak when all layers are there, else RAM's: read before
        // each run, and the best reading so far taken as what the machine can do, since a busy
        // moment can only lower a reading).
        const bool allOnGpu = placement.gpuLayers == c.nLayers;
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
            if (i > 0) placement.cpu = inference::makeCpuBackend({.threads = t});
            std::vector<double> prefillRate, ttft, decodeRate, weightRate, bandwidth;
            // Progress on standard error (a big model's run takes minutes): each run's number as it ends.
            ctx.err << "bench: " << t << (t == 1 ? " thread, run" : " threads, run");
            ctx.err.flush();
            for (int rep = 0; rep < *repetitions; ++rep) {
                const double b = probe ? probe->measure() : gpuPeak;
                const auto run = inference::benchmark(model, placement.split(), *prefill, *decode);
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
    } catch (const FitError& e) {
        return failToFit(ctx, e);
    } catch (const std::exception& e) {
        return fail(ctx, e, kFailed, QStringLiteral("bench failed: "));
    }
    return kOk;
}

int cmdChat(Context& ctx) {
    const QString modelPath = ctx.parser.value(QStringLiteral("model"));
    const bool remote = ctx.parser.isSet(QStringLiteral("remote"));
    if ((modelPath.isEmpty() && !remote) || !ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: chat needs --model M.gguf [--system TEXT] [--builtin NAME] [-n N] [--temp T] ...\n";
        return kUsage;
    }
    const auto n = numberOption<int>(ctx, "n", 512, 1, 1 << 20);
    const auto temp = numberOption<float>(ctx, "temp", 0.8f, 0.0f, 100.0f);
    const auto seed = numberOption<double>(ctx, "seed", 0.0, 0.0, 9007199254740992.0);
    const auto load = loadOptions(ctx);
    if (!n || !temp || !seed || !load) return kUsage;
    if (remote) {
        inference::GenerationParams params;
        params.maxTokens = *n;
        params.sampling.temperature = *temp;
        params.sampling.seed = static_cast<std::uint64_t>(*seed);
        return remoteChat(ctx, params);
    }
    return runGenerationErrors(ctx, [&]() -> int {
        // (a file's template that does not parse matters only when it is the one used)
        const auto loaded = loadModel(ctx, *load, !ctx.parser.isSet(QStringLiteral("builtin")));
        const auto& tokenizer = *loaded.llm.tokenizer;
        const auto& model = loaded.llm.model;
        std::optional<inference::ChatTemplate> chatTemplate = loaded.llm.chatTemplate;
        if (const QString builtin = ctx.parser.value(QStringLiteral("builtin")); !builtin.isEmpty())
            chatTemplate = inference::ChatTemplate::builtin(builtin.toStdString());
        if (!chatTemplate) {
            ctx.err << "lumen-cli: " << modelPath << " has no chat template; choose one with --builtin NAME (";
            for (auto name : inference::ChatTemplate::builtinNames()) ctx.err << " " << QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
            ctx.err << " )\n";
            return kFailed;
        }
        const auto reasoning = reasoningOption(ctx, &*chatTemplate);
        if (!reasoning) return kUsage;
        const auto extras = templateExtras(ctx);
        const auto session = loaded.newSession();
        inference::Generator generator(*session, tokenizer);
        inference::GenerationParams params;
        params.maxTokens = *n;
        params.sampling.temperature = *temp;
        params.sampling.seed = static_cast<std::uint64_t>(*seed);

        const auto& vocab = tokenizer.vocabulary();
        const QString banner = QStringLiteral("%1 (%2) on %3").arg(QString::fromStdString(model->config().architecture),
                                                                   QString::fromStdString(chatTemplate->name()),
                                                                   QString::fromStdString(loaded.placement.describe()));
        chatLoop(ctx, banner, [&](nlohmann::ordered_json& messages) {
            const std::string prompt = chatTemplate->apply(messages, true, &vocab, extras);
            const auto tokens = promptTokens(tokenizer, prompt);
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
        });
        return kOk;
    }, QStringLiteral("; start over with /reset or use a larger --ctx-size"));
}

int cmdServe(Context& ctx) {
    const QString modelPath = ctx.parser.value(QStringLiteral("model")), embedPath = ctx.parser.value(QStringLiteral("embed-model"));
    if ((modelPath.isEmpty() && embedPath.isEmpty()) || !ctx.positional.isEmpty() || (modelPath.isEmpty() && ctx.parser.isSet(QStringLiteral("mmproj")))) {
        ctx.err << "lumen-cli: serve needs --model M.gguf [--mmproj P.gguf] and/or --embed-model DIR, [--host 127.0.0.1] [--port 8080] [--api-key KEY] "
                   "[--alias NAME]\n";
        return kUsage;
    }
    const auto port = numberOption<int>(ctx, "port", 8080, 0, 65535);
    const auto load = loadOptions(ctx);
    if (!port || !load) return kUsage;
    ServerOptions options;
    options.host = ctx.parser.isSet(QStringLiteral("host")) ? ctx.parser.value(QStringLiteral("host")).toStdString() : options.host;
    options.port = *port;
    options.apiKey = ctx.parser.isSet(QStringLiteral("api-key")) ? ctx.parser.value(QStringLiteral("api-key")).toStdString() : qEnvironmentVariable("LUMEN_API_KEY").toStdString();
    options.modelId = ctx.parser.value(QStringLiteral("alias")).toStdString();
    if (!isLoopbackHost(options.host) && options.apiKey.empty()) {
        ctx.err << "lumen-cli: serving on " << QString::fromStdString(options.host)
                << " lets other machines in: give an --api-key (or LUMEN_API_KEY) that clients must send\n";
        return kUsage;
    }
    return runGenerationErrors(ctx, [&]() -> int {
        std::optional<LoadedLlm> loaded;
        if (!modelPath.isEmpty()) loaded.emplace(loadModel(ctx, *load, false));
        std::optional<Projector> projector;
        if (ctx.parser.isSet(QStringLiteral("mmproj"))) projector = openMmproj(ctx, *loaded);
        // An embedding model (CLIP or DINOv2 folder) on a backend of its own: the GPU when usable.
        std::unique_ptr<inference::Backend> embedBackend;
        std::unique_ptr<vision::ImageEncoder> embedder;
        if (!embedPath.isEmpty()) {
            try {
                embedBackend = inference::makeCudaBackend();
            } catch (const std::exception&) {
                embedBackend = inference::makeCpuBackend({.threads = load->threads});
            }
            embedder = vision::openImageEncoder(embedPath.toStdString(), *embedBackend);
            options.embeddingModelId = QFileInfo(embedPath).fileName().toStdString();
        }
        options.log = [&ctx](const std::string& line) {
            ctx.err << QString::fromStdString(line) << "\n";
            ctx.err.flush();
        };
        OpenAiServer server(loaded ? &*loaded : nullptr, projector ? &*projector : nullptr, embedder.get(), options);
        int bound = 0;
        try {
            bound = server.bind();
        } catch (const std::runtime_error& e) {
            return fail(ctx, e);
        }
        // Ctrl+C or SIGTERM stops the server (the handler only sets a flag; a thread watching it
        // calls stop() until the server has stopped); a second Ctrl+C ends the process at once.
        gInterrupted.store(false);
        const auto previousInt = std::signal(SIGINT, onInterrupt);
        const auto previousTerm = std::signal(SIGTERM, onInterrupt);
        std::atomic<bool> done{false};
        std::thread watcher([&] {
            bool told = false;
            while (!done.load()) {
                if (gInterrupted.load()) {
                    if (!told) std::signal(SIGINT, SIG_DFL);
                    told = true;
                    server.stop();
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
        struct Cleanup {
            std::atomic<bool>& done;
            std::thread& watcher;
            void (*previousInt)(int);
            void (*previousTerm)(int);
            ~Cleanup() {
                done.store(true);
                watcher.join();
                std::signal(SIGINT, previousInt);
                std::signal(SIGTERM, previousTerm);
            }
        } cleanup{done, watcher, previousInt, previousTerm};
        const QString host = QString::fromStdString(options.host).contains(QLatin1Char(':')) && !options.host.starts_with("[")
                                 ? QStringLiteral("[%1]").arg(QString::fromStdString(options.host))
                                 : QString::fromStdString(options.host);
        if (loaded)
            ctx.err << "Serving " << QString::fromStdString(loaded->summary()) << " on " << QString::fromStdString(loaded->placement.describe())
                    << (projector ? " with its image projector" : "") << ", context " << loaded->contextSize << " tokens\n";
        if (embedder)
            ctx.err << "Serving embeddings of " << QString::fromStdString(embedder->description()) << " as " << QString::fromStdString(options.embeddingModelId)
                    << " on " << QString::fromStdString(std::string(embedBackend->name())) << "\n";
        ctx.out << "listening on http://" << host << ":" << bound << "/v1 (Ctrl+C stops)\n";
        ctx.out.flush();
        ctx.err.flush();
        server.run();
        ctx.err << "lumen-cli: the server stopped\n";
        return kOk;
    });
}

}  // namespace lumen::app::cli
