#pragma once
// Writes an assistant reply to the database while it streams, so a crash or a kill loses at most
// the last second of text: the message is created `partial`, pieces are buffered and appended
// at least once per `flushInterval`, and finish() stores the final status and metrics.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "storage/chat_store.h"

namespace lumen::storage {

class StreamingMessageWriter {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    StreamingMessageWriter(ChatStore& store, std::int64_t chatId, std::optional<std::string> model,
                           std::chrono::milliseconds flushInterval = std::chrono::seconds(1),
                           Clock clock = {});
    // A writer that was never finished marks its message `stopped` (errors are swallowed here:
    // closeInterruptedMessages() repairs whatever is left partial on the next start).
    ~StreamingMessageWriter();
    StreamingMessageWriter(const StreamingMessageWriter&) = delete;
    StreamingMessageWriter& operator=(const StreamingMessageWriter&) = delete;

    std::int64_t messageId() const { return messageId_; }
    // Buffers the piece; writes the buffer when the flush interval has passed since the last write
    // (or the last failed try: a full disk is retried once per interval, not once per piece).
    // A failed write keeps the text buffered and throws Error; the next due flush tries again.
    void append(std::string_view piece);
    // The same for a piece of the reply's reasoning.
    void appendReasoning(std::string_view piece);
    // For callers with a timer: writes the buffer if it is due.
    void flushIfDue();
    void flush();
    // Stores what is buffered and the final status. When that fails (Error), the text stays
    // buffered and finish can be called again later with the same arguments.
    void finish(MessageStatus status, const GenerationMetrics& metrics,
                std::optional<std::string_view> error = std::nullopt);
    bool finished() const { return finished_; }
    // Text not yet written (a write failed, or the interval has not passed).
    bool hasUnsaved() const { return !pending_.empty() || !pendingReasoning_.empty(); }
    // Text appended so far, flushed or not.
    const std::string& text() const { return text_; }
    const std::string& reasoning() const { return reasoning_; }

private:
    std::chrono::steady_clock::time_point now() const;
    ChatStore& store_;
    std::int64_t messageId_ = 0;
    std::chrono::milliseconds interval_;
    Clock clock_;
    std::chrono::steady_clock::time_point lastFlush_;
    std::string pending_, pendingReasoning_;
    std::string text_, reasoning_;
    bool finished_ = false;
};

}  // namespace lumen::storage
