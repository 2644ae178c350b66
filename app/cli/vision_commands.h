#pragma once
// lumen-cli's image commands: embed, classify, eval.

#include "app/cli/cli_context.h"

namespace lumen::app::cli {

// embed --model DIR (--image FILE | --text TEXT)... [--normalize] [--json]
int cmdEmbed(Context& ctx);
// classify --model DIR [--labels "a,b,..."] [--template T]... [--examples DIR] [--top-k K] [--json] IMAGE...
int cmdClassify(Context& ctx);
// eval --model DIR [--labels "a,b,..."] [--examples DIR] TEST_DIR (one sub-folder of images per label)
int cmdEval(Context& ctx);

}  // namespace lumen::app::cli
