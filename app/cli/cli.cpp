#include "app/cli/cli.h"

#include <QCommandLineParser>
#include <functional>
#include <map>

#include "app/cli/commands.h"
#include "storage/database.h"

namespace lumen::app::cli {
namespace {

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
        {QStringLiteral("pull"),
         {"download a model from the Hugging Face Hub: pull OWNER/NAME[:FILE.gguf] [--dir DIR], or find one: pull --search WORDS (HF_ENDPOINT, HF_TOKEN)", cmdPull}},
        {QStringLiteral("inspect"), {"describe a GGUF or safetensors model: inspect MODEL [--tensor NAME --dump OUT.f32]", cmdInspect}},
        {QStringLiteral("serve"),
         {"an OpenAI-compatible server: serve --model M.gguf [--mmproj P.gguf] [--embed-model DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY]", cmdServe}},
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
        {QStringLiteral("dir"), QStringLiteral("pull: the folder to put the model in (default: the models folder beside the database)."), QStringLiteral("DIR")},
        {QStringLiteral("search"), QStringLiteral("pull: GGUF repositories on the Hub whose name has these words, most downloaded first."), QStringLiteral("WORDS")},
        {QStringLiteral("host"), QStringLiteral("serve: the address to listen on (default 127.0.0.1; another needs --api-key)."), QStringLiteral("HOST")},
        {QStringLiteral("port"), QStringLiteral("serve: the port (default 8080; 0: any free one, printed)."), QStringLiteral("PORT")},
        {QStringLiteral("api-key"), QStringLiteral("serve: clients must send 'Authorization: Bearer KEY' (default: LUMEN_API_KEY); --remote: the key to send (default: OPENAI_API_KEY)."), QStringLiteral("KEY")},
        {QStringLiteral("remote"), QStringLiteral("generate, chat, describe: run on an OpenAI-compatible server (vLLM, llama-server, Ollama, lumen-cli serve) at URL."),
         QStringLiteral("URL")},
        {QStringLiteral("remote-model"), QStringLiteral("generate, chat, describe: the server's model (default: its only one)."), QStringLiteral("NAME")},
        {QStringLiteral("embed-model"), QStringLiteral("serve: a CLIP or DINOv2 folder for /v1/embeddings."), QStringLiteral("DIR")},
        {QStringLiteral("alias"), QStringLiteral("serve: the model's name for clients (default: the file name)."), QStringLiteral("NAME")},
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
