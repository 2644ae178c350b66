// The OpenAI-compatible server: its request reading (every field it takes, and the errors for
// what it does not), then lumen-cli serve driven by OpenAI's own client library from npm
// (tests/server/openai_client.test.mjs: streaming and not, completions, stop, seeds, concurrent
// clients, cancel by disconnect, images, API keys, errors in OpenAI's shape).

#include <QProcess>
#include <QTcpServer>
#include <QTcpSocket>
#include <QStandardPaths>
#include <QtTest>

#include "app/openai_server.h"
#include "app/remote_client.h"
#include "inference/llm/model_writer.h"
#include "cli_runner.h"
#include "test_util.h"

using namespace lumen;

namespace {

// The ApiError a body gives (status 0 when it is read without one).
app::ApiError errorOf(const std::string& body, bool chat = true) {
    try {
        app::parseApiRequest(body, chat, "m.gguf");
    } catch (const app::ApiError& e) {
        return e;
    }
    return {0, {}, {}, "no error"};
}

test::CliResult cli(QStringList args, QString input = {}) { return test::runCli(std::move(args), std::move(input)); }

}  // namespace

class TestOpenAiServer : public QObject {
    Q_OBJECT
private slots:
    void readsAChatRequest() {
        const auto r = app::parseApiRequest(R"({"model": "m.gguf", "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}, {"type": "text", "text": "this?"}]},
            {"role": "assistant", "content": "A word.", "reasoning_content": "It says hello."},
            {"role": "user", "content": "Sure?"}],
            "temperature": 0.2, "top_p": 0.5, "top_k": 7, "min_p": 0.1, "frequency_penalty": 0.5, "presence_penalty": -0.5,
            "seed": 99, "max_tokens": 12, "stop": ["\n\n", ""], "stream": true, "stream_options": {"include_usage": true},
            "chat_template_kwargs": {"enable_thinking": false}, "n": 1, "user": "ignored"})",
                                            true, "m.gguf");
        QCOMPARE(r.messages.size(), std::size_t(4));
        QCOMPARE(r.messages[0]["role"].get<std::string>(), std::string("system"));
        QCOMPARE(r.messages[1]["content"].get<std::string>(), std::string("What is <image>\nthis?"));
        QCOMPARE(r.images, std::vector<std::string>{"hello"});
        QCOMPARE(r.messages[2]["reasoning_content"].get<std::string>(), std::string("It says hello."));
        QCOMPARE(r.params.sampling.temperature, 0.2f);
        QCOMPARE(r.params.sampling.topP, 0.5f);
        QCOMPARE(r.params.sampling.topK, 7);
        QCOMPARE(r.params.sampling.minP, 0.1f);
        QCOMPARE(r.params.sampling.frequencyPenalty, 0.5f);
        QCOMPARE(r.params.sampling.presencePenalty, -0.5f);
        QCOMPARE(r.params.sampling.seed, std::uint64_t(99));
        QCOMPARE(r.params.maxTokens, 12);
        QVERIFY(r.maxTokensGiven);
        QCOMPARE(r.params.stopStrings, std::vector<std::string>{"\n\n"});
        QVERIFY(r.stream && r.includeUsage);
        QCOMPARE(r.templateExtras["enable_thinking"].get<bool>(), false);
        // No model named, no max_tokens, a single stop string, nulls as absent.
        const auto plain = app::parseApiRequest(R"({"messages": [{"role": "user", "content": "hi"}], "stop": "END", "max_tokens": null, "temperature": null})", true, "m.gguf");
        QVERIFY(!plain.maxTokensGiven);
        QCOMPARE(plain.params.stopStrings, std::vector<std::string>{"END"});
        QCOMPARE(plain.params.sampling.temperature, inference::SamplingParams{}.temperature);
    }

    void readsACompletionRequest() {
        auto r = app::parseApiRequest(R"({"prompt": "Once", "echo": true, "max_completion_tokens": 3})", false, "m.gguf");
        QCOMPARE(r.prompt, std::string("Once"));
        QVERIFY(r.echo && !r.promptIds);
        QCOMPARE(r.params.maxTokens, 3);
        r = app::parseApiRequest(R"({"prompt": ["Twice"]})", false, "m.gguf");
        QCOMPARE(r.prompt, std::string("Twice"));
        r = app::parseApiRequest(R"({"prompt": [1, 2, 3]})", false, "m.gguf");
        QCOMPARE(*r.promptIds, (std::vector<std::int32_t>{1, 2, 3}));
        r = app::parseApiRequest(R"({"prompt": [[4, 5]]})", false, "m.gguf");
        QCOMPARE(*r.promptIds, (std::vector<std::int32_t>{4, 5}));
    }

    void refusesWhatItCannotDo_data() {
        QTest::addColumn<QString>("body");
        QTest::addColumn<bool>("chat");
        QTest::addColumn<int>("status");
        QTest::addColumn<QString>("code");
        QTest::addColumn<QString>("param");
        QTest::newRow("not JSON") << "{\"messages\": " << true << 400 << "" << "";
        QTest::newRow("not an object") << "[1, 2]" << true << 400 << "" << "";
        QTest::newRow("no messages") << "{}" << true << 400 << "" << "messages";
        QTest::newRow("empty messages") << R"({"messages": []})" << true << 400 << "" << "messages";
        QTest::newRow("unknown role") << R"({"messages": [{"role": "wizard", "content": "x"}]})" << true << 400 << "" << "messages";
        QTest::newRow("content a number") << R"({"messages": [{"role": "user", "content": 5}]})" << true << 400 << "" << "messages";
        QTest::newRow("audio part") << R"({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]})" << true << 400 << "" << "messages";
        QTest::newRow("image by URL") << R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})" << true << 400 << "" << "messages";
        QTest::newRow("bad base64") << R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}]}]})" << true << 400 << "" << "messages";
        QTest::newRow("other model") << R"({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})" << true << 404 << "model_not_found" << "model";
        QTest::newRow("temperature text") << R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})" << true << 400 << "" << "temperature";
        QTest::newRow("temperature high") << R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})" << true << 400 << "" << "temperature";
        QTest::newRow("max_tokens 0") << R"({"prompt": "x", "max_tokens": 0})" << false << 400 << "" << "max_tokens";
        QTest::newRow("max_tokens huge") << R"({"prompt": "x", "max_tokens": 18446744073709551615})" << false << 400 << "" << "max_tokens";
        QTest::newRow("n 2") << R"({"prompt": "x", "n": 2})" << false << 400 << "" << "n";
        QTest::newRow("stop a number") << R"({"prompt": "x", "stop": 3})" << false << 400 << "" << "stop";
        QTest::newRow("tools") << R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})" << true << 400 << "" << "tools";
        QTest::newRow("json mode") << R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})" << true << 400 << "" << "response_format";
        QTest::newRow("logprobs") << R"({"prompt": "x", "logprobs": 2})" << false << 400 << "" << "logprobs";
        QTest::newRow("no prompt") << R"({"max_tokens": 2})" << false << 400 << "" << "prompt";
        QTest::newRow("empty prompt") << R"({"prompt": ""})" << false << 400 << "" << "prompt";
        QTest::newRow("two prompts") << R"({"prompt": ["a", "b"]})" << false << 400 << "" << "prompt";
        QTest::newRow("negative token") << R"({"prompt": [1, -2]})" << false << 400 << "" << "prompt";
        QTest::newRow("seed a float") << R"({"prompt": "x", "seed": 1.5})" << false << 400 << "" << "seed";
        QTest::newRow("stream a string") << R"({"prompt": "x", "stream": "yes"})" << false << 400 << "" << "stream";
    }

    void refusesWhatItCannotDo() {
        QFETCH(QString, body);
        QFETCH(bool, chat);
        QFETCH(int, status);
        QFETCH(QString, code);
        QFETCH(QString, param);
        const app::ApiError e = errorOf(body.toStdString(), chat);
        QCOMPARE(e.status, status);
        QCOMPARE(QString::fromStdString(e.code), code);
        QCOMPARE(QString::fromStdString(e.param), param);
        const auto shape = e.body();
        QVERIFY(shape["error"]["message"].is_string() && shape["error"]["type"].is_string());
        QVERIFY(shape["error"].contains("param") && shape["error"].contains("code"));
    }

    void readsAnEmbeddingRequest() {
        auto r = app::parseEmbeddingRequest(R"({"model": "clip", "input": "a cat"})", "clip");
        QCOMPARE(r.inputs.size(), std::size_t(1));
        QVERIFY(!r.inputs[0].image && !r.base64);
        r = app::parseEmbeddingRequest(R"({"input": ["a", "data:image/png;base64,aGVsbG8=", {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,aGk="}},
                                                  {"image": "data:image/png;base64,eW8="}], "encoding_format": "base64"})", "clip");
        QCOMPARE(r.inputs.size(), std::size_t(4));
        QVERIFY(r.base64);
        QVERIFY(!r.inputs[0].image && r.inputs[1].image && r.inputs[2].image && r.inputs[3].image);
        QCOMPARE(r.inputs[1].data, std::string("hello"));
        QCOMPARE(r.inputs[2].data, std::string("hi"));
        QCOMPARE(r.inputs[3].data, std::string("yo"));
        for (const char* bad : {R"({"input": [1, 2]})", R"({"input": []})", R"({"input": ""})", R"({"model": "x", "input": "a"})", R"({"input": "a", "dimensions": 8})",
                                R"({"input": "a", "encoding_format": "int8"})", R"({})", R"({"input": "data:image/png;base64,!!"})", "nope"}) {
            int status = 0;
            try {
                app::parseEmbeddingRequest(bad, "clip");
            } catch (const app::ApiError& e) {
                status = e.status;
            }
            QVERIFY2(status == 400 || status == 404, bad);
        }
    }

    void loopbackHosts() {
        for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) QVERIFY2(app::isLoopbackHost(host), host);
        for (const char* host : {"0.0.0.0", "192.168.1.2", "::", "example.com", "127.0.0.1.evil.com", "127.0.0"}) QVERIFY2(!app::isLoopbackHost(host), host);
    }

    // The client side: server-sent events in any pieces, chunks of both APIs, and what a broken
    // or hostile server sends refused with a message.
    void readsEventStreams() {
        app::SseParser sse;
        std::vector<std::string> events;
        const std::string stream = ": keep-alive\r\ndata: {\"a\":1}\r\n\r\nevent: x\nid: 3\ndata: line one\ndata: line two\n\ndata:[DONE]\n\n";
        for (char c : stream)
            for (auto& e : sse.feed(std::string_view(&c, 1))) events.push_back(std::move(e));
        QCOMPARE(events, (std::vector<std::string>{"{\"a\":1}", "line one\nline two", "[DONE]"}));
        QCOMPARE(sse.feed("data: tail"), std::vector<std::string>{});
        QCOMPARE(sse.finish(), std::vector<std::string>{"tail"});
        // CR alone ends lines too (a CRLF cut between reads counts once); a byte-order mark first is dropped.
        app::SseParser cr;
        events.clear();
        for (const char* piece : {"\xEF\xBB", "\xBF" "data: a\r", "\r", "data: b\r\n\r", "\ndata: c\r\rdata:\r\r"})
            for (auto& e : cr.feed(piece)) events.push_back(std::move(e));
        QCOMPARE(events, (std::vector<std::string>{"a", "b", "c", ""}));

        auto d = app::parseStreamChunk(R"({"choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":"hm"},"finish_reason":null}]})", true);
        QCOMPARE(d.content, std::string("Hi"));
        QCOMPARE(d.reasoning, std::string("hm"));
        QVERIFY(!d.finishReason);
        d = app::parseStreamChunk(R"({"choices":[{"delta":{"reasoning":"the name Ollama uses"},"finish_reason":"length"}]})", true);
        QCOMPARE(d.reasoning, std::string("the name Ollama uses"));
        QCOMPARE(*d.finishReason, std::string("length"));
        d = app::parseStreamChunk(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})", true);
        QCOMPARE(d.promptTokens, 7);
        QCOMPARE(d.completionTokens, 3);
        QCOMPARE(app::parseStreamChunk(R"({"choices":[{"text":" there"}]})", false).content, std::string(" there"));
        for (const char* bad : {"not json", "[1]", R"({"choices": 5})", R"({"choices": [3]})", R"({"choices": [{"delta": {"content": 4}}]})",
                                R"({"choices": [{"delta": "x"}]})", R"({"choices": [{"finish_reason": 1}]})", R"({"error": {"message": "overloaded"}})"}) {
            bool refused = false;
            try {
                app::parseStreamChunk(bad, true);
            } catch (const app::RemoteError& e) {
                refused = true;
                if (std::string(bad).find("overloaded") != std::string::npos) QVERIFY(std::string(e.what()).find("overloaded") != std::string::npos);
            }
            QVERIFY2(refused, bad);
        }
        QCOMPARE(app::errorMessageOf(R"({"error":{"message":"bad key","type":"x"}})"), std::string("bad key"));
        QCOMPARE(app::errorMessageOf(R"({"error":"plain"})"), std::string("plain"));
        QCOMPARE(app::errorMessageOf("<html>"), std::string());
        // Base URLs as people paste them.
        QCOMPARE(app::normalizeBaseUrl("localhost:8000")->toString(), QString("http://localhost:8000/v1"));
        QCOMPARE(app::normalizeBaseUrl("http://h:1/v1/chat/completions")->toString(), QString("http://h:1/v1"));
        QCOMPARE(app::normalizeBaseUrl("https://api.example.com/v1/")->toString(), QString("https://api.example.com/v1"));
        QVERIFY(!app::normalizeBaseUrl("ftp://h/v1"));
        QVERIFY(!app::normalizeBaseUrl(""));
        QCOMPARE(app::imageDataUrl(QByteArray("\x89PNG\r\n", 6)).substr(0, 22), std::string("data:image/png;base64,"));
    }

    // A server that does not answer, stops sending, sends what is not an event stream, ends
    // early or fails with a page of HTML: each a RemoteError that says so, in bounded time.
    void remoteThatMisbehaves_data() {
        QTest::addColumn<QByteArray>("answer");  // what the fake server sends ("" nothing)
        QTest::addColumn<bool>("close");         // and whether it closes the connection then
        QTest::addColumn<QString>("message");
        const QByteArray sse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
        QTest::newRow("silent") << QByteArray() << false << "did not answer within";
        QTest::newRow("stalls") << sse + "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" << false << "stopped sending";
        QTest::newRow("not events") << sse + "data: <html>\n\n" << true << "not a JSON object";
        QTest::newRow("ends early") << sse + "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" << true << "before it was finished";
        QTest::newRow("error page") << QByteArray("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html>x</html>") << true
                                    << "HTTP 502";
        QTest::newRow("error event") << sse + "data: {\"error\":{\"message\":\"out of memory\"}}\n\n" << true << "out of memory";
    }

    void remoteThatMisbehaves() {
        QFETCH(QByteArray, answer);
        QFETCH(bool, close);
        QFETCH(QString, message);
        QTcpServer fake;
        QVERIFY(fake.listen(QHostAddress::LocalHost));
        QList<QTcpSocket*> sockets;
        connect(&fake, &QTcpServer::newConnection, this, [&] {
            QTcpSocket* socket = fake.nextPendingConnection();
            sockets << socket;
            connect(socket, &QTcpSocket::readyRead, socket, [socket, answer, close] {
                socket->readAll();
                if (answer.isEmpty()) return;
                socket->write(answer);
                socket->flush();
                if (close) socket->disconnectFromHost();
            });
        });
        app::RemoteConfig config;
        config.baseUrl = QUrl(QStringLiteral("http://127.0.0.1:%1/v1").arg(fake.serverPort()));
        config.model = QStringLiteral("m");
        config.connectTimeoutMs = 400;
        config.stallTimeoutMs = 400;
        QElapsedTimer t;
        t.start();
        QString error;
        std::string pieces;
        try {
            app::RemoteClient(config).stream(nlohmann::ordered_json{{"messages", nlohmann::ordered_json::array()}}, true,
                                             [&](const std::string&, const std::string& answerText) { pieces += answerText; });
        } catch (const app::RemoteError& e) {
            error = QString::fromUtf8(e.what());
        }
        QVERIFY2(error.contains(message), qPrintable(error));
        QVERIFY(t.elapsed() < 5000);
        // A cancel ends a wait at once, as a cancel (not an error).
        if (QTest::currentDataTag() == QLatin1String("silent")) {
            std::atomic<bool> cancel{true};
            config.connectTimeoutMs = 60000;
            t.restart();
            const auto reply = app::RemoteClient(config).stream(nlohmann::ordered_json::object(), true, {}, &cancel);
            QVERIFY(reply.cancelled);
            QVERIFY(t.elapsed() < 2000);
        }
    }

    // lumen-cli generate, chat and describe with --remote against lumen-cli serve: the same text
    // as the model run here, and clear errors for a server that refuses or is not there.
    void remoteCommandsMatchLocal() {
        const QString shared = test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: the remote commands run the real TinyStories model");
        const QString model = shared + QStringLiteral("/tinystories/stories260K.gguf");
        const QString vision = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../vision/fixtures/");
        test::ServeProcess server;
        QVERIFY(server.start({QStringLiteral("--model"), model, QStringLiteral("--gpu-layers"), QStringLiteral("0"), QStringLiteral("--mmproj"),
                              vision + QStringLiteral("llava/mmproj-tiny.gguf")}));
        const QStringList sampling{QStringLiteral("-n"), QStringLiteral("20"), QStringLiteral("--temp"), QStringLiteral("0")};
        const auto local = cli(QStringList{"generate", "--model", model, "--gpu-layers", "0", "--prompt", "Once upon a time"} + sampling);
        const auto remote = cli(QStringList{"generate", "--remote", server.url, "--prompt", "Once upon a time"} + sampling);
        QCOMPARE(remote.status, 0);
        QCOMPARE(remote.out, local.out);
        QVERIFY2(remote.err.contains("TTFT") && remote.err.contains("20 tokens"), qPrintable(remote.err));
        // (two turns within the model's 128 tokens; the third asks for more than is left, which
        // the server refuses and the chat says, taking the turn back)
        auto r = cli({"chat", "--remote", server.url, "--remote-model", "stories260K.gguf", "-n", "8", "--temp", "0"},
                     QStringLiteral("Hello\nAgain\nOnce more, with a long question that goes on\n/exit\n"));
        QCOMPARE(r.status, 0);
        QVERIFY2(r.err.count("TTFT") == 2 && r.err.contains("context_length") == false && r.err.contains("maximum context length"), qPrintable(r.err));
        r = cli(QStringList{"describe", "--remote", server.url, vision + "preprocess/gradient_37x53.png"} + sampling);
        QCOMPARE(r.status, 0);
        QVERIFY2(r.out.contains("gradient_37x53.png:\n") && r.err.contains("TTFT"), qPrintable(r.err));
        r = cli({"generate", "--remote", server.url, "--remote-model", "other", "--prompt", "x"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("HTTP 404") && r.err.contains("does not exist"), qPrintable(r.err));
        r = cli({"generate", "--remote", "http://127.0.0.1:1/v1", "--prompt", "x"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("cannot reach"), qPrintable(r.err));
        r = cli({"generate", "--remote", "ftp://x", "--prompt", "x"});
        QCOMPARE(r.status, 1);
        QVERIFY2(r.err.contains("--remote takes"), qPrintable(r.err));
    }

    // lumen-cli serve and OpenAI's client library.
    void openAiClientLibrary() {
        const QString node = QStandardPaths::findExecutable(QStringLiteral("node"));
        if (node.isEmpty()) QSKIP("node is not installed (scripts/install-deps.sh installs it): the client-library checks need it");
        const QString shared = test::sharedDataDir();
        if (shared.isEmpty()) QSKIP("../shared/data is absent: the server is driven with the real TinyStories model");
        QTemporaryDir dir;
        // A model with a long context whose reply takes seconds, to cancel mid-way.
        inference::RandomModelSpec slow;
        slow.dim = 512;
        slow.nLayers = 8;
        slow.nHeads = 8;
        slow.nKvHeads = 4;
        slow.ffnDim = 1376;
        slow.contextLength = 4096;
        slow.weightType = inference::DType::Q8_0;
        const QString slowPath = dir.filePath(QStringLiteral("slow.gguf"));
        inference::writeRandomLanguageModel(slow, slowPath.toStdString());
        const QString vision = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../vision/fixtures/");
        QProcess run;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("LUMEN_CLI"), QStringLiteral(LUMEN_CLI_PATH));
        env.insert(QStringLiteral("MODEL"), shared + QStringLiteral("/tinystories/stories260K.gguf"));
        env.insert(QStringLiteral("SLOW_MODEL"), slowPath);
        env.insert(QStringLiteral("VISION_MODEL"), shared + QStringLiteral("/tinystories/stories260K.gguf"));  // (64 wide, as the projector)
        env.insert(QStringLiteral("MMPROJ"), vision + QStringLiteral("llava/mmproj-tiny.gguf"));
        env.insert(QStringLiteral("IMAGE"), vision + QStringLiteral("preprocess/gradient_37x53.png"));
        env.insert(QStringLiteral("EMBED_MODEL"), vision + QStringLiteral("models/clip-tiny"));
        run.setProcessEnvironment(env);
        run.setProcessChannelMode(QProcess::MergedChannels);
        run.start(node, {QStringLiteral(LUMEN_TEST_SOURCE_DIR "/../server/openai_client.test.mjs")});
        if (!run.waitForFinished(280000)) {  // (node takes its servers down when told to stop)
            run.terminate();
            run.waitForFinished(5000);
            QFAIL(qPrintable(QString::fromUtf8(run.readAll())));
        }
        const QString output = QString::fromUtf8(run.readAll());
        qInfo().noquote() << output;
        if (run.exitCode() == 77) QSKIP(qPrintable(output.trimmed()));
        QCOMPARE(run.exitCode(), 0);
    }
};

QTEST_GUILESS_MAIN(TestOpenAiServer)
#include "tst_openai_server.moc"
