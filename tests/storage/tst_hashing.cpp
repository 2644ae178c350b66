// SHA-256 against the FIPS 180-4 test vectors, and base64 against RFC 4648's.

#include <QtTest>

#include "storage/base64.h"
#include "storage/sha256.h"

using namespace lumen::storage;

class TestHashing : public QObject {
    Q_OBJECT
private slots:
    void sha256Vectors_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QString>("digest");
        QTest::newRow("empty") << QByteArray() << "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        QTest::newRow("abc") << QByteArray("abc") << "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        QTest::newRow("448 bits") << QByteArray("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                                  << "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
        QTest::newRow("896 bits")
            << QByteArray("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
            << "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
        QTest::newRow("million a") << QByteArray(1000000, 'a')
                                   << "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    }
    void sha256Vectors() {
        QFETCH(QByteArray, input);
        QFETCH(QString, digest);
        QCOMPARE(QString::fromStdString(sha256Hex(std::string_view(input.constData(), static_cast<std::size_t>(input.size())))), digest);
        // Fed in uneven pieces, the same digest.
        Sha256 h;
        std::size_t at = 0, step = 1;
        while (at < static_cast<std::size_t>(input.size())) {
            const std::size_t n = std::min(step, static_cast<std::size_t>(input.size()) - at);
            h.update(std::string_view(input.constData() + at, n));
            at += n;
            step = step * 3 + 1;
        }
        const auto d = h.finish();
        QCOMPARE(QByteArray(reinterpret_cast<const char*>(d.data()), 32).toHex(), digest.toLatin1());
    }

    void base64Vectors_data() {
        QTest::addColumn<QByteArray>("raw");
        QTest::addColumn<QString>("encoded");
        QTest::newRow("empty") << QByteArray() << "";
        QTest::newRow("f") << QByteArray("f") << "Zg==";
        QTest::newRow("fo") << QByteArray("fo") << "Zm8=";
        QTest::newRow("foo") << QByteArray("foo") << "Zm9v";
        QTest::newRow("foob") << QByteArray("foob") << "Zm9vYg==";
        QTest::newRow("fooba") << QByteArray("fooba") << "Zm9vYmE=";
        QTest::newRow("foobar") << QByteArray("foobar") << "Zm9vYmFy";
        QTest::newRow("binary") << QByteArray("\x00\xff\xfe\x80", 4) << "AP/+gA==";
    }
    void base64Vectors() {
        QFETCH(QByteArray, raw);
        QFETCH(QString, encoded);
        const std::span bytes(reinterpret_cast<const std::uint8_t*>(raw.constData()), static_cast<std::size_t>(raw.size()));
        QCOMPARE(QString::fromStdString(base64Encode(bytes)), encoded);
        const auto decoded = base64Decode(encoded.toStdString());
        QVERIFY(decoded);
        QCOMPARE(QByteArray(reinterpret_cast<const char*>(decoded->data()), static_cast<qsizetype>(decoded->size())), raw);
    }

    void base64RejectsMalformed_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("length") << "Zm9";
        QTest::newRow("alphabet") << "Zm9-";
        QTest::newRow("padding in middle") << "Zg==Zm9v";
        QTest::newRow("three pads") << "Z===";
        QTest::newRow("data after pad") << "Zm=v";
    }
    void base64RejectsMalformed() {
        QFETCH(QString, text);
        QVERIFY(!base64Decode(text.toStdString()));
    }
};

QTEST_GUILESS_MAIN(TestHashing)
#include "tst_hashing.moc"
