#pragma once
// lumen-cli's commands, by group; each takes the parsed command line and returns the exit status
// (kOk, kFailed, kUsage) with its messages printed.

#include "app/cli/cli_context.h"
#include "inference/llm/generator.h"

#include <functional>
#include <nlohmann/json.hpp>

namespace lumen::app::cli {

// library_commands.cpp: the machine and the stored chats.
int cmdInfo(Context& ctx);     // info
int cmdChats(Context& ctx);    // chats
int cmdExport(Context& ctx);   // export CHAT_ID [--format md|json] [--output FILE]
int cmdImport(Context& ctx);   // import FILE
int cmdSearch(Context& ctx);   // search WORDS...
int cmdRestore(Context& ctx);  // restore [--force]

// model_commands.cpp: reading model files without running them.
int cmdInspect(Context& ctx);   // inspect MODEL [--tensor NAME --dump OUT.f32]
int cmdTokenize(Context& ctx);  // tokenize --model M.gguf [--ids] [--no-bos] [--parse-special] TEXT
int cmdTemplate(Context& ctx);  // template (--model M.gguf | --file T.jinja | --builtin NAME) --context C.json

// llm_commands.cpp: running a language model, through the LLM host the app uses too.
int cmdGenerate(Context& ctx);  // generate --model M.gguf (--prompt TEXT | --prompt-tokens 1,2,3) ...
int cmdDescribe(Context& ctx);  // describe --model LLM.gguf --mmproj MMPROJ.gguf [--prompt TEXT] IMAGE...
int cmdBench(Context& ctx);     // bench --model M.gguf [-p 512] [-n 128] [-t 1,2] [-r 3] [--gpu-layers N]
int cmdChat(Context& ctx);      // chat --model M.gguf [--system TEXT] [--builtin NAME]
int cmdServe(Context& ctx);     // serve --model M.gguf [--mmproj P.gguf] [--host H] [--port N] [--api-key KEY] [--alias NAME]

// The turns of an interactive chat: reads lines (/reset starts over with the --system prompt,
// /exit or the end of input ends), appends each as a user message and calls `turn`, which
// appends the reply (or takes the user message back).
void chatLoop(Context& ctx, const QString& banner, const std::function<void(nlohmann::ordered_json& messages)>& turn);

// remote_commands.cpp: generate, describe and chat with --remote URL (an OpenAI-compatible server).
int remoteGenerate(Context& ctx, const inference::GenerationParams& params);
int remoteDescribe(Context& ctx, const inference::GenerationParams& params);
int remoteChat(Context& ctx, const inference::GenerationParams& params);

// pull_command.cpp: a model from the Hugging Face Hub.
int cmdPull(Context& ctx);  // pull OWNER/NAME[:FILE.gguf] [--dir DIR]

// vision_commands.cpp: image embeddings and classification.
int cmdEmbed(Context& ctx);     // embed --model DIR (--image FILE | --text TEXT)... [--normalize] [--json]
int cmdClassify(Context& ctx);  // classify --model DIR [--labels "a,b"] [--template T]... [--examples DIR] [--top-k K] [--json] IMAGE...
int cmdEval(Context& ctx);      // eval --model DIR [--labels "a,b"] [--examples DIR] TEST_DIR (a sub-folder of images per label)

}  // namespace lumen::app::cli
