#include "inference/llm/multimodal.h"

#include <stdexcept>
#include <string>

namespace lumen::inference {

std::vector<TokenId> spliceImages(const Tokenizer& tokenizer, std::string_view text, const std::vector<std::vector<TokenId>>& images, bool addBos,
                                  std::string_view marker) {
    std::vector<TokenId> out;
    std::size_t image = 0, pos = 0;
    bool first = true;
    while (true) {
        const std::size_t at = text.find(marker, pos);
        const std::string_view piece = text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos);
        // Text pieces are tokenized apart, as the reference implementations do.
        if (!piece.empty() || (first && addBos)) {
            const auto ids = tokenizer.encode(std::string(piece), first && addBos, true);
            out.insert(out.end(), ids.begin(), ids.end());
        }
        first = false;
        if (at == std::string_view::npos) break;
        if (image >= images.size()) throw std::invalid_argument("the prompt has more image markers than images (" + std::to_string(images.size()) + ")");
        out.insert(out.end(), images[image].begin(), images[image].end());
        ++image;
        pos = at + marker.size();
    }
    if (image != images.size())
        throw std::invalid_argument("the prompt has " + std::to_string(image) + " image markers for " + std::to_string(images.size()) + " images");
    return out;
}

std::vector<TokenId> spliceImages(std::span<const TokenId> tokens, TokenId markerId, const std::vector<std::vector<TokenId>>& images) {
    std::vector<TokenId> out;
    std::size_t image = 0;
    for (TokenId t : tokens) {
        if (t != markerId) {
            out.push_back(t);
            continue;
        }
        if (image >= images.size()) throw std::invalid_argument("the prompt has more image tokens than images (" + std::to_string(images.size()) + ")");
        out.insert(out.end(), images[image].begin(), images[image].end());
        ++image;
    }
    if (image != images.size())
        throw std::invalid_argument("the prompt has " + std::to_string(image) + " image tokens for " + std::to_string(images.size()) + " images");
    return out;
}

}  // namespace lumen::inference
