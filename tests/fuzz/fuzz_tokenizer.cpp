// Tokenizers on arbitrary text: encoding never fails, every id is in the vocabulary, and for
// valid UTF-8 without special-token parsing, decoding gives the text back.
#include <cstdint>
#include <string>

#include "inference/formats/text.h"
#include "inference/llm/tokenizer.h"
#include "inference/llm/unicode.h"

namespace {

using namespace lumen::inference;

// Small vocabularies built in code: every byte, a few merges and special tokens.
Vocabulary makeVocabulary(Vocabulary::Model model) {
    Vocabulary v;
    v.model = model;
    v.pre = "llama-bpe";
    auto add = [&](std::string text, TokenType type, float score = 0.0f) {
        v.ids.emplace(text, static_cast<TokenId>(v.tokens.size()));
        v.tokens.push_back(std::move(text));
        v.types.push_back(type);
        v.scores.push_back(score);
    };
    add("<unk>", TokenType::Unknown);
    add("<s>", TokenType::Control);
    add("</s>", TokenType::Control);
    add("<|im_start|>", TokenType::Control);
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.addBos = true;
    v.byteTokens.fill(-1);
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
        v.byteTokens[static_cast<std::size_t>(b)] = static_cast<TokenId>(v.tokens.size());
        if (model == Vocabulary::Model::Spm) add(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", TokenType::Byte);
        else add(byteToUnicode(static_cast<std::uint8_t>(b)), TokenType::Normal);
    }
    if (model == Vocabulary::Model::Spm) {
        const char* pieces[] = {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab", "ba"};
        float score = -1.0f;
        for (const char* p : pieces) add(p, TokenType::Normal, score -= 0.5f);
    } else {
        const std::string space = byteToUnicode(' ');
        add(space + "a", TokenType::Normal);
        add("ab", TokenType::Normal);
        v.mergeRanks.emplace(space + " a", 0);
        v.mergeRanks.emplace("a b", 1);
    }
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Tokenizer spm(makeVocabulary(Vocabulary::Model::Spm));
    static const Tokenizer bpe(makeVocabulary(Vocabulary::Model::Bpe));
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const Tokenizer* t : {&spm, &bpe}) {
        for (bool special : {false, true}) {
            const auto ids = t->encode(text, true, special);
            for (auto id : ids)
                if (!t->vocabulary().valid(id)) __builtin_trap();
            // SentencePiece writes spaces as U+2581, so a literal U+2581 decodes as a space (as in
            // the reference); the round trip holds for every other valid UTF-8 text.
            const bool literalSpaceMark = t == &spm && text.find("\xE2\x96\x81") != std::string_view::npos;
            if (!special && isValidUtf8(text) && !literalSpaceMark) {
                // The BOS is a control token and decodes to nothing.
                if (t->decode(ids) != text) __builtin_trap();
            }
        }
    }
    return 0;
}
