#pragma once

#include <stdexcept>
#include <string>

namespace lumen::inference {

// A model file that cannot be read as what it claims to be. The message names the file, the
// item and the problem: "model.gguf: tensor 'blk.3.attn_q.weight': data runs past the end of
// the file (offset 1.2 GB, file 0.9 GB)".
class FormatError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace lumen::inference
