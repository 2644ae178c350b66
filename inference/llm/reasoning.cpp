#include "inference/llm/reasoning.h"

#include <algorithm>
#include <cctype>

namespace lumen::inference {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// harmony's markers
constexpr std::string_view kMessage = "<|message|>", kChannel = "<|channel|>";
constexpr std::string_view kMessageEnds[] = {"<|end|>", "<|return|>", "<|call|>", "<|start|>"};
// A header with no message after this many bytes is no header: the model writes plain text.
constexpr std::size_t kMaxHeader = 256;

}  // namespace

std::optional<ReasoningMarkers> reasoningMarkers(std::string_view templateSource) {
    ReasoningMarkers m;
    if (templateSource.find(kChannel) != std::string_view::npos && templateSource.find(kMessage) != std::string_view::npos) {
        m.harmony = true;
        return m;
    }
    if (templateSource.find(m.close) == std::string_view::npos) return std::nullopt;
    return m;
}

bool promptOpensReasoning(std::string_view prompt, const ReasoningMarkers& markers) {
    if (markers.harmony) return false;
    while (!prompt.empty() && isSpace(prompt.back())) prompt.remove_suffix(1);
    return prompt.size() >= markers.open.size() && prompt.substr(prompt.size() - markers.open.size()) == markers.open;
}

ReasoningSplitter::ReasoningSplitter(ReasoningMarkers markers, bool startInReasoning)
    : markers_(std::move(markers)), inside_(startInReasoning && !markers_.harmony), reasoned_(inside_) {}

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

ReasoningSplitter::Pieces ReasoningSplitter::feedHarmony() {
    Pieces out;
    std::string_view rest = pending_;
    for (;;) {
        if (!inMessage_) {
            // A header: its channel decides where the message goes.
            const std::size_t at = rest.find(kMessage);
            if (at == std::string_view::npos) {
                if (rest.size() > kMaxHeader && rest.find("<|") == std::string_view::npos) {  // plain text, not a header
                    inside_ = false;
                    inMessage_ = true;
                    continue;
                }
                break;
            }
            const std::string_view header = rest.substr(0, at);
            const std::size_t channel = header.rfind(kChannel);
            std::string_view name = channel == std::string_view::npos ? std::string_view() : header.substr(channel + kChannel.size());
            name = name.substr(0, std::min(name.find(' '), name.find("<|")));
            inside_ = name == "analysis";
            if (inside_ && reasoned_ && reasoningStarted_) out.reasoning += "\n\n";  // a second analysis message
            reasoned_ = reasoned_ || inside_;
            inMessage_ = true;
            rest.remove_prefix(at + kMessage.size());
            continue;
        }
        std::size_t at = std::string_view::npos, length = 0;
        for (const std::string_view end : kMessageEnds)
            if (const std::size_t found = rest.find(end); found < at) {
                at = found;
                length = end == "<|start|>" ? 0 : end.size();  // (a header begins: it stays for the header)
            }
        if (at == std::string_view::npos) break;
        append(rest.substr(0, at), out);
        rest.remove_prefix(at + length);
        inMessage_ = false;
    }
    // Inside a message, hold back a tail that could begin an end marker; outside, the header.
    std::size_t keep = rest.size();
    if (inMessage_) {
        keep = 0;
        if (const std::size_t lt = rest.rfind('<'); lt != std::string_view::npos)
            for (const std::string_view end : kMessageEnds)
                if (end.substr(0, std::min(end.size(), rest.size() - lt)) == rest.substr(lt)) keep = rest.size() - lt;
        append(rest.substr(0, rest.size() - keep), out);
    }
    pending_ = std::string(rest.substr(rest.size() - keep));
    return out;
}

ReasoningSplitter::Pieces ReasoningSplitter::feed(std::string_view text) {
    if (markers_.harmony) {
        pending_ += text;
        return feedHarmony();
    }
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
    if (markers_.harmony && !inMessage_) inside_ = false;  // an unfinished header: shown as the answer, not lost
    append(pending_, out);
    pending_.clear();
    return out;
}

}  // namespace lumen::inference
