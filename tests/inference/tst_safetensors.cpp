// safetensors: single files, sharded folders, dtype conversion, bad shards.

#include <QtTest>
#include <nlohmann/json.hpp>

#include "inference/formats/format_error.h"
#include "inference/formats/half.h"
#include "inference/formats/inspect.h"
#include "inference/formats/safetensors.h"
#include "inference/formats/text.h"
#include "test_util.h"

using namespace lumen::inference;

namespace {

struct Entry {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;
};

QByteArray makeFile(const std::vector<Entry>& entries, const nlohmann::json& metadata = nullptr) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.is_null()) header["__metadata__"] = metadata;
    std::vector<std::uint8_t> data;
    for (const auto& e : entries) {
        header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {data.size(), data.size() + e.bytes.size()}}};
        data.insert(data.end(), e.bytes.begin(), e.bytes.end());
    }
    std::string text = header.dump();
    while (text.size() % 8) text += ' ';  // the reference pads the header with spaces
    QByteArray out(8, '\0');
    const std::uint64_t n = text.size();
    std::memcpy(out.data(), &n, 8);
    out += QByteArray::fromStdString(text);
    out += QByteArray(reinterpret_cast<const char*>(data.data()), static_cast<qsizetype>(data.size()));
    return out;
}

std::vector<std::uint8_t> f32Bytes(std::vector<float> v) {
    std::vector<std::uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

std::vector<std::uint8_t> u16Bytes(std::vector<std::uint16_t> v) {
    std::vector<std::uint8_t> b(v.size() * 2);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

}  // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private slots:
    void init() { QVERIFY(dir_.isValid()); }

    // JSON nesting is measured on the text, brackets inside strings aside; a header nested
    // deeper than 256 levels is refused before it is parsed.
    void jsonDepthIsBounded() {
        QCOMPARE(jsonNestingDepth("{\"a\": [1, {\"b\": \"[[[{{\"}], \"c\": \"\\\\\\\"[[\"}"), std::size_t(3));
        QCOMPARE(jsonNestingDepth("[]"), std::size_t(1));
        QCOMPARE(jsonNestingDepth("\"]]]\" 5"), std::size_t(0));
        std::string header = "{\"x\": " + std::string(300, '[') + std::string(300, ']') + "}";
        while (header.size() % 8) header += ' ';
        std::vector<std::uint8_t> bytes(8);
        const std::uint64_t n = header.size();
        for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
        bytes.insert(bytes.end(), header.begin(), header.end());
        try {
            (void)SafetensorsModel::parse(bytes, "deep.safetensors");
            QFAIL("a header nested 300 deep was read");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("nests deeper than 256 levels"), e.what());
        }
    }

    void singleFile() {
        const QString path = dir_.filePath("model.safetensors");
        QVERIFY(lumen::test::writeFile(path, makeFile({{"w", "F32", {2, 3}, f32Bytes({1, 2, 3, 4, 5, 6})},
                                                      {"h", "F16", {2}, u16Bytes({floatToHalf(0.5f), floatToHalf(-2.0f)})},
                                                      {"b", "BF16", {1}, u16Bytes({floatToBf16(3.0f)})},
                                                      {"position_ids", "I64", {1, 2}, std::vector<std::uint8_t>(16, 0)}},
                                                     {{"format", "pt"}})));
        const SafetensorsModel m = SafetensorsModel::open(path.toStdString());
        QCOMPARE(m.tensors().size(), std::size_t(4));
        QCOMPARE(m.metadata().at("format"), std::string("pt"));
        const auto& w = m.tensor("w");
        QCOMPARE(w.shape, (std::vector<std::int64_t>{2, 3}));
        QVERIFY(w.dtype == DType::F32);
        QCOMPARE(w.elements, std::int64_t(6));
        QVERIFY(!m.tensor("position_ids").dtype);
        QCOMPARE(m.tensor("position_ids").dtypeName, std::string("I64"));

        const auto out = dir_.filePath("h.f32").toStdString();
        QCOMPARE(dumpTensorF32(path.toStdString(), "h", out), std::int64_t(2));
        const QByteArray h = lumen::test::readFile(QString::fromStdString(out));
        float values[2];
        std::memcpy(values, h.constData(), 8);
        QCOMPARE(values[0], 0.5f);
        QCOMPARE(values[1], -2.0f);
        QVERIFY_THROWS_EXCEPTION(FormatError, dumpTensorF32(path.toStdString(), "position_ids", out));
        QVERIFY_THROWS_EXCEPTION(FormatError, m.tensor("missing"));
    }

    void folderWithModelFileAndConfig() {
        QDir(dir_.path()).mkdir("clip");
        const QString folder = dir_.filePath("clip");
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors", makeFile({{"x", "F32", {1}, f32Bytes({1})}})));
        QVERIFY(lumen::test::writeFile(folder + "/config.json",
                                       R"({"model_type": "clip", "vision_config": {"hidden_size": 768, "patch_size": 32}})"));
        std::ostringstream report;
        inspectModel(folder.toStdString(), report);
        const std::string text = report.str();
        QVERIFY2(text.find("model_type \"clip\"") != std::string::npos, text.c_str());
        QVERIFY2(text.find("vision_config: hidden_size 768, patch_size 32") != std::string::npos, text.c_str());
    }

    void shardedFolder() {
        QDir(dir_.path()).mkdir("sharded");
        const QString folder = dir_.filePath("sharded");
        QVERIFY(lumen::test::writeFile(folder + "/model-00001-of-00002.safetensors",
                                       makeFile({{"a", "F32", {2}, f32Bytes({1, 2})}})));
        QVERIFY(lumen::test::writeFile(folder + "/model-00002-of-00002.safetensors",
                                       makeFile({{"b", "F32", {1}, f32Bytes({3})}})));
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors.index.json",
                                       R"({"metadata": {"total_size": 12}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})"));
        const SafetensorsModel m = SafetensorsModel::open(folder.toStdString());
        QCOMPARE(m.files().size(), std::size_t(2));
        QCOMPARE(m.tensor("b").elements, std::int64_t(1));

        // An index naming a tensor its shard lacks, or a path outside the folder, is refused.
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors.index.json",
                                       R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})"));
        try {
            SafetensorsModel::open(folder.toStdString());
            QFAIL("missing tensor accepted");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("tensor 'c' listed in the index is not in this shard"), e.what());
        }
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors.index.json", R"({"weight_map": {"a": "../secret.safetensors"}})"));
        QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsModel::open(folder.toStdString()));
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors.index.json", R"([1])"));
        QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsModel::open(folder.toStdString()));
        QVERIFY(lumen::test::writeFile(folder + "/model.safetensors.index.json", R"({"weight_map": {"a": "missing.safetensors"}})"));
        QVERIFY_THROWS_EXCEPTION(FormatError, SafetensorsModel::open(folder.toStdString()));
    }

    void emptyFolder() {
        QDir(dir_.path()).mkdir("empty");
        try {
            SafetensorsModel::open(dir_.filePath("empty").toStdString());
            QFAIL("empty folder accepted");
        } catch (const FormatError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("no model.safetensors"), e.what());
        }
    }

private:
    QTemporaryDir dir_;
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
