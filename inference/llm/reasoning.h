#pragma once
// Reasoning replies: models that think (Qwen3, QwQ, the DeepSeek-R1 distills) write their
// reasoning between markers before the answer, "<think>...</think>". The markers come from the
// model's chat template; a template whose generation prompt already opens them (QwQ,
// DeepSeek-R1 distills) leaves the model inside its reasoning from the first token.
//
// gpt-oss writes OpenAI's "harmony" format instead: a reply is a run of messages, each a header
// ("<|channel|>analysis", "<|start|>assistant<|channel|>final") then "<|message|>", its text, and
// an end ("<|end|>", or "<|return|>" / "<|call|>" which end generation). Messages of the analysis
// channel are the reasoning, the others the answer. The markers are special tokens, so such a
// reply is detokenized with them rendered (GenerationParams::renderSpecial).

#include <optional>
#include <string>
#include <string_view>

namespace lumen::inference {

struct ReasoningMarkers {
    std::string open = "<think>";
    std::string close = "</think>";
    bool harmony = false;  // the harmony format (open and close unused)
};

// The markers a chat template's model reasons between: <think>...</think> when the template
// source names the closing marker, harmony when it writes "<|channel|>" and "<|message|>";
// nullopt for models that do not reason.
std::optional<ReasoningMarkers> reasoningMarkers(std::string_view templateSource);
// Whether a rendered prompt ends inside an open reasoning block (its last marker is the open
// one, followed by nothing but whitespace), so the reply starts with reasoning.
bool promptOpensReasoning(std::string_view prompt, const ReasoningMarkers& markers);

// Splits streamed text into reasoning and answer. Text may arrive in any pieces: a marker cut
// between two of them is held back until it is whole. Whitespace before the reasoning and before
// the answer is dropped. Only a reply's first marker opens reasoning: "<think>" inside an answer
// is text.
class ReasoningSplitter {
public:
    // (A harmony reply starts before its first header whatever startInReasoning says.)
    struct Pieces {
        std::string reasoning;
        std::string answer;
    };

    explicit ReasoningSplitter(ReasoningMarkers markers, bool startInReasoning = false);
    Pieces feed(std::string_view text);
    // The text held back (an unfinished marker is plain text after all).
    Pieces finish();
    bool inReasoning() const { return inside_; }
    // Whether any reasoning has been seen.
    bool reasoned() const { return reasoned_; }

private:
    void append(std::string_view text, Pieces& out);
    Pieces feedHarmony();

    ReasoningMarkers markers_;
    bool inside_;
    bool reasoned_;
    bool answerStarted_ = false;
    bool reasoningStarted_ = false;
    std::string pending_;          // a possible marker prefix, held back (harmony: a header too)
    bool inMessage_ = false;       // harmony: between a message's "<|message|>" and its end
};

}  // namespace lumen::inference
