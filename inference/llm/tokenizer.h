#pragma once
// Text <-> token ids for a model's vocabulary, matching llama.cpp and the reference tokenizers:
//  - SentencePiece-style ("llama"): whitespace as U+2581, a leading space before text that
//    starts the prompt or follows a special token (add_space_prefix), merges by score, byte
//    fallback (<0x0A>) for anything not in the vocabulary.
//  - Byte-level BPE ("gpt2"): the pre-tokenizer's split expression (chosen by
//    tokenizer.ggml.pre), bytes mapped to printable code points, merges by rank.
// Special tokens (control and user-defined) written in the text become their single id when
// the caller asks (the chat template's output); otherwise control-token text stays plain text.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inference/llm/vocabulary.h"

namespace lumen::inference {

class PreTokenizer;

class Tokenizer {
public:
    explicit Tokenizer(Vocabulary vocabulary);  // throws FormatError for an unknown pre-tokenizer
    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    static Tokenizer fromGguf(const GgufFile& file);

    const Vocabulary& vocabulary() const { return vocab_; }

    // addSpecial: BOS (and EOS) as the vocabulary asks. parseSpecial: control tokens written
    // in the text map to their ids.
    std::vector<TokenId> encode(std::string_view text, bool addSpecial = true, bool parseSpecial = false) const;

    // The bytes a token stands for (control tokens: their text when renderSpecial, else nothing).
    std::string tokenBytes(TokenId id, bool renderSpecial = false) const;
    // All tokens as text (SPM: without the leading space of the first piece).
    std::string decode(std::span<const TokenId> ids, bool renderSpecial = false) const;

private:
    void encodeText(std::string_view text, bool startsFragment, std::vector<TokenId>& out) const;
    void encodeSpm(std::string_view text, std::vector<TokenId>& out) const;
    void encodeSpmChunk(std::string_view text, std::vector<TokenId>& out) const;
    void encodeBpeWord(std::string_view word, std::vector<TokenId>& out) const;

    Vocabulary vocab_;
    std::vector<TokenId> specials_;  // control and user-defined tokens, longest text first
    std::unique_ptr<PreTokenizer> pre_;
    bool ignoreMerges_ = false;
    // SPM: no token has U+2581 right after another character, so no merge can cross the start of
    // a word and each word can be merged on its own (same result, far smaller queues).
    bool spmWordsIndependent_ = false;
};

// The pieces a byte-level BPE pre-tokenizer (a tokenizer.ggml.pre name) splits `text` into.
// Throws FormatError for an unknown name.
std::vector<std::string> preTokenize(std::string_view pre, std::string_view text);

// Turns generated tokens into text as they arrive: bytes come out only when they complete
// UTF-8 characters, and the SentencePiece leading space of the first piece is dropped.
class Detokenizer {
public:
    // atStart: the text begins here (drop the SentencePiece leading space); false when these
    // tokens continue text already shown, such as a reply after its prompt.
    explicit Detokenizer(const Tokenizer& tokenizer, bool renderSpecial = false, bool atStart = true);
    // Text that is complete after this token (possibly empty).
    std::string push(TokenId id);
    // Whatever is left; incomplete sequences become U+FFFD.
    std::string finish();

private:
    const Tokenizer& tokenizer_;
    bool renderSpecial_;
    bool atStart_ = true;
    std::string pending_;
};

}  // namespace lumen::inference
