#pragma once
// Multimodal prompts: the text a chat template rendered, with an image marker ("<image>") where
// each image goes, turned into token ids with each marker replaced by that image's placeholder
// ids (see imagePlaceholders in generator.h; the generator feeds the image's embedding rows there).

#include <string_view>
#include <vector>

#include "inference/llm/tokenizer.h"

namespace lumen::inference {

inline constexpr std::string_view kImageMarker = "<image>";

// std::invalid_argument when the text has a different number of markers than there are images.
std::vector<TokenId> spliceImages(const Tokenizer& tokenizer, std::string_view text, const std::vector<std::vector<TokenId>>& images,
                                  bool addBos, std::string_view marker = kImageMarker);

// Replaces each occurrence of `markerId` in a list of token ids by the next image's placeholders.
std::vector<TokenId> spliceImages(std::span<const TokenId> tokens, TokenId markerId, const std::vector<std::vector<TokenId>>& images);

}  // namespace lumen::inference
