#include "storage/streaming_writer.h"

namespace lumen::storage {

StreamingMessageWriter::StreamingMessageWriter(ChatStore& store, std::int64_t chatId,
                                               std::optional<std::string> model,
                                               std::chrono::milliseconds flushInterval, Clock clock)
    : store_(store), interval_(flushInterval), clock_(std::move(clock)) {
    NewMessage m;
    m.role = Role::Assistant;
    m.status = MessageStatus::Partial;
    m.metrics.model = std::move(model);
    messageId_ = store_.addMessage(chatId, m);
    lastFlush_ = now();
}

StreamingMessageWriter::~StreamingMessageWriter() {
    if (finished_) return;
    try {
        finish(MessageStatus::Stopped, {});
    } catch (...) {
        // The destructor must not throw; the message stays partial and is closed on next start.
    }
}

std::chrono::steady_clock::time_point StreamingMessageWriter::now() const {
    return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void StreamingMessageWriter::append(std::string_view piece) {
    pending_ += piece;
    text_ += piece;
    flushIfDue();
}

void StreamingMessageWriter::appendReasoning(std::string_view piece) {
    pendingReasoning_ += piece;
    reasoning_ += piece;
    flushIfDue();
}

void StreamingMessageWriter::flushIfDue() {
    if ((!pending_.empty() || !pendingReasoning_.empty()) && now() - lastFlush_ >= interval_) flush();
}

void StreamingMessageWriter::flush() {
    lastFlush_ = now();  // (also after a failed try: the next one waits an interval)
    if (!pending_.empty() || !pendingReasoning_.empty()) store_.appendContent(messageId_, pending_, pendingReasoning_);
    pending_.clear();
    pendingReasoning_.clear();
}

void StreamingMessageWriter::finish(MessageStatus status, const GenerationMetrics& metrics,
                                    std::optional<std::string_view> error) {
    flush();
    store_.finishMessage(messageId_, status, metrics, error);
    finished_ = true;
}

}  // namespace lumen::storage
