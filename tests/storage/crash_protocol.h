#pragma once
// What the crash writer streams, so the test can check every committed byte it reported.
// The writer prints one line per commit, after the commit returns:
//   ready
//   U <message id>                     a user message was added (content: userText(id))
//   P <message id> <committed length>  a streaming reply was flushed up to this length
//   F <message id> <length>            the reply was finished (status complete)

#include <cstdint>
#include <string>

namespace lumen::test::crash {

inline std::string userText(std::int64_t messageId) {
    return "user message " + std::to_string(messageId) + " with some words to index";
}

inline std::string replyPiece(std::int64_t messageId, int index) {
    return "tok" + std::to_string((messageId * 31 + index) % 997) + " ";
}

// The first `length` bytes of reply `messageId`.
inline std::string replyPrefix(std::int64_t messageId, std::size_t length) {
    std::string text;
    for (int i = 0; text.size() < length; ++i) text += replyPiece(messageId, i);
    return text.substr(0, length);
}

}  // namespace lumen::test::crash
