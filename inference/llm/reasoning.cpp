#include "inference/llm/reasoning.h"

#include <algorithm>
#include <cctype>

namespace lumen::inference {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

std::optional<ReasoningMarkers> reasoningMarkers(std::string_view templateSource) {
    ReasoningMarkers m;
    if (templateSource.find(m.close) == std::string_view::npos) return std::nullopt;
    return m;
}

bool promptOpensReasoning(std::string_view prompt, const ReasoningMarkers& markers) {
    while (!prompt.empty() && isSpace(prompt.back())) prompt.remove_suffix(1);
    return prompt.size() >= markers.open.size() && prompt.substr(prompt.size() - markers.open.size()) == markers.open;
}

ReasoningSplitter::ReasoningSplitter(ReasoningMarkers markers, bool startInReasoning)
    : markers_(std::move(markers)), inside_(startInReasoning), reasoned_(startInReasoning) {}

void ReasoningSplitter::append(std::string_view text, Pieces& out) {
    if (inside_) {
        if (!reasoningStarted_) {
            while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
            if (text.empty()) return;
            reasoningStarted_ = true;
        }
        out.reasoning += text;
        return;
    }
    if (!answerStarted_) {
        while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
        if (text.empty()) return;
        answerStarted_ = true;
    }
    out.answer += text;
}

ReasoningSplitter::Pieces ReasoningSplitter::feed(std::string_view text) {
    Pieces out;
    pending_ += text;
    std::string_view rest = pending_;
    for (;;) {
        // Only an opening marker before any answer counts (a model quoting "<think>" in its
        // answer is writing text), and a closing one inside reasoning.
        const std::string& marker = inside_ ? markers_.close : markers_.open;
        const bool watching = inside_ || !answerStarted_;
        const std::size_t at = watching ? rest.find(marker) : std::string_view::npos;
        if (at == std::string_view::npos) break;
        append(rest.substr(0, at), out);
        rest.remove_prefix(at + marker.size());
        if (!inside_ && answerStarted_) {  // answer text came just before it: the marker is text too
            append(marker, out);
            continue;
        }
        inside_ = !inside_;
        reasoned_ = true;
    }
    // Hold back a tail that could be the start of the marker being watched for.
    std::size_t keep = 0;
    if (inside_ || !answerStarted_) {
        const std::string& marker = inside_ ? markers_.close : markers_.open;
        for (std::size_t n = std::min(marker.size() - 1, rest.size()); n > 0; --n)
            if (rest.substr(rest.size() - n) == std::string_view(marker).substr(0, n)) {
                keep = n;
                break;
            }
    }
    append(rest.substr(0, rest.size() - keep), out);
    pending_ = std::string(rest.substr(rest.size() - keep));
    return out;
}

ReasoningSplitter::Pieces ReasoningSplitter::finish() {
    Pieces out;
    append(pending_, out);
    pending_.clear();
    return out;
}

}  // namespace lumen::inference
