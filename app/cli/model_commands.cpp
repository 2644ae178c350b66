// lumen-cli's commands that read model files without running them: inspect, tokenize, template.
#include "app/cli/commands.h"

#include <QFile>
#include <QFileInfo>
#include <optional>
#include <sstream>

#include "app/read_file.h"
#include "inference/formats/format_error.h"
#include "inference/formats/gguf.h"
#include "inference/formats/inspect.h"
#include "inference/formats/text.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/language_model.h"
#include "inference/llm/tokenizer.h"

namespace lumen::app::cli {
namespace {

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

}  // namespace

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

}  // namespace lumen::app::cli
