// The Jinja engine: every real chat template in ../shared/data/chat_templates (and the newer
// families' in fixtures/chat_templates/models) x each
// conversation in fixtures/chat_templates/contexts.json renders byte-identical to Debian's
// python3-jinja2 set up as Hugging Face does (goldens from make_chat_template_goldens.py),
// plus language features and error handling on their own.

#include <QElapsedTimer>
#include <QtTest>
#include <atomic>
#include <fstream>
#include <limits>

#include "inference/llm/chat_template.h"
#include "inference/llm/jinja/jinja.h"
#include "test_util.h"

using namespace lumen::inference::jinja;
using Json = nlohmann::ordered_json;

namespace {

Json readJson(const QString& path) {
    const QByteArray bytes = lumen::test::readFile(path);
    return Json::parse(bytes.constData(), bytes.constData() + bytes.size());
}

RenderOptions fixedClock() {
    RenderOptions o;
    o.strftimeNow = [](const std::string& format) {
        std::tm tm{};
        tm.tm_year = 2024 - 1900;
        tm.tm_mon = 6;
        tm.tm_mday = 26;
        tm.tm_hour = 13;
        tm.tm_min = 45;
        tm.tm_wday = 5;
        char buffer[128];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        return std::string(buffer, std::strftime(buffer, sizeof buffer, format.c_str(), &tm));
#pragma GCC diagnostic pop
    };
    return o;
}

std::string render(const std::string& source, const Json& context = Json::object()) {
    return Template::parse(source).render(context, fixedClock());
}

}  // namespace

class TestJinja : public QObject {
    Q_OBJECT
private slots:
    void realTemplatesMatchPythonJinja2() {
        const QString shared = lumen::test::sharedDataDir();
        if (shared.isEmpty()) qInfo("../shared/data is absent: only the templates kept in fixtures/chat_templates/models");
        const QString dir = QStringLiteral(LUMEN_TEST_SOURCE_DIR "/fixtures/chat_templates/");
        const Json contexts = readJson(dir + "contexts.json");
        const Json goldens = readJson(dir + "goldens.json");
        int compared = 0, failures = 0;
        for (const auto& [file, cases] : goldens.items()) {
            // "models/<name>": this project's copies of the newer families' templates; others: ../shared's.
            const bool own = QString::fromStdString(file).startsWith(QLatin1String("models/"));
            if (!own && shared.isEmpty()) continue;
            const QByteArray source = lumen::test::readFile((own ? dir : shared + "/chat_templates/") + QString::fromStdString(file));
            QVERIFY2(!source.isEmpty(), file.c_str());
            const Template t = Template::parse(source.toStdString());
            for (const auto& [name, expected] : cases.items()) {
                ++compared;
                std::string got, error;
                try {
                    got = t.render(contexts.at(name), fixedClock());
                } catch (const TemplateError& e) {
                    error = e.reason();
                }
                bool ok;
                if (expected.contains("output")) ok = error.empty() && got == expected["output"].get<std::string>();
                else if (expected.contains("raised")) ok = error == expected["raised"].get<std::string>();
                else ok = !error.empty();
                if (!ok && ++failures <= 6) {
                    qWarning("%s / %s: expected %s\n--- got (%s) ---\n%s\n--- expected ---\n%s", file.c_str(), name.c_str(),
                             expected.begin().key().c_str(), error.c_str(), got.c_str(), expected.begin().value().get<std::string>().c_str());
                }
            }
        }
        qInfo("%d template renders compared, %d differ", compared, failures);
        QVERIFY(compared >= (shared.isEmpty() ? 30 : 200));
        QCOMPARE(failures, 0);
    }

    void expressions_data() {
        QTest::addColumn<QString>("source");
        QTest::addColumn<QString>("expected");
        QTest::newRow("arithmetic") << "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 1 / 4 }}" << "7 3 -4 1 1024 0.25";
        QTest::newRow("floats") << "{{ 0.1 + 0.2 }} {{ 1e-7 }} {{ 3.0 }} {{ 1e16 }}" << "0.30000000000000004 1e-07 3.0 1e+16";
        QTest::newRow("strings") << "{{ 'a' ~ 1 ~ none }} {{ 'x' * 3 }} {{ \"it's\" }}" << "a1None xxx it's";
        QTest::newRow("python printing") << "{{ [1, 'a', none, true] }} {{ {'k': 'v'} }}" << "[1, 'a', None, True] {'k': 'v'}";
        QTest::newRow("comparisons") << "{{ 1 < 2 < 3 }} {{ 'a' in 'cat' }} {{ 2 not in [1, 3] }} {{ none is none }}" << "True True True True";
        QTest::newRow("conditional") << "{{ 'yes' if 0 else 'no' }}|{{ 'x' if false }}|" << "no||";
        QTest::newRow("slicing") << "{{ [1,2,3,4][1:3] }} {{ 'hello'[::-1] }} {{ [1,2,3][-1] }}" << "[2, 3] olleh 3";
        QTest::newRow("methods") << "{{ ' ab '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'Hi'.upper() }}|{{ 'x.py'.endswith('.py') }}"
                                 << "ab|['a', 'b']|HI|True";
        QTest::newRow("filters") << "{{ [3,1,2]|sort|join(',') }} {{ 'ab'|length }} {{ x|default('d') }} {{ ' t '|trim }} {{ [1,1,2]|unique|list }}"
                                 << "1,2,3 2 d t [1, 2]";
        QTest::newRow("tojson") << "{{ {'a': [1, 2.5, 'é\"'], 'b': none}|tojson }}" << "{\"a\": [1, 2.5, \"é\\\"\"], \"b\": null}";
        QTest::newRow("tojson indent") << "{{ {'a': [1]}|tojson(indent=2) }}" << "{\n  \"a\": [\n    1\n  ]\n}";
        QTest::newRow("selectattr map") << "{{ xs|selectattr('t', 'equalto', 1)|map(attribute='n')|list }}" << "['a', 'c']";
        QTest::newRow("indent") << "{{ 'a\nb\n\nc'|indent(2) }}" << "a\n  b\n\n  c";
        QTest::newRow("loop") << "{% for x in 'abc' %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}" << "1a,2b,3c";
        QTest::newRow("loop filter else") << "{% for x in [1,2,3] if x > 5 %}{{ x }}{% else %}none{% endfor %}" << "none";
        QTest::newRow("break continue") << "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"
                                        << "013";
        QTest::newRow("namespace") << "{% set ns = namespace(n=0) %}{% for x in [1,2,3] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}" << "6";
        QTest::newRow("loop scope") << "{% set n = 1 %}{% for x in [1] %}{% set n = 5 %}{% endfor %}{{ n }}" << "1";
        QTest::newRow("macro") << "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ana') }} {{ greet('Bo', punct='?') }}"
                               << "Hi Ana! Hi Bo?";
        QTest::newRow("block set") << "{% set x %}  inner  {% endset %}[{{ x }}]" << "[  inner  ]";
        QTest::newRow("filter block") << "{% filter upper %}abc{% endfilter %}" << "ABC";
        QTest::newRow("whitespace control") << "a  {%- if true -%}  b  {%- endif -%}  c" << "abc";
        QTest::newRow("trim and lstrip blocks") << "<\n  {% if true %}\n  x\n  {% endif %}\n>" << "<\n  x\n>";
        QTest::newRow("dict items") << "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}" << "a=1;b=2;";
        QTest::newRow("tests") << "{{ 3 is odd }} {{ 'x' is string }} {{ [] is iterable }} {{ {} is mapping }} {{ y is defined }} {{ 4 is divisibleby 2 }}"
                               << "True True True True False True";
        QTest::newRow("strftime_now") << "{{ strftime_now('%d %b %Y') }}" << "26 Jul 2024";
        QTest::newRow("raw") << "{% raw %}{{ not rendered }}{% endraw %}" << "{{ not rendered }}";
        QTest::newRow("comments") << "a{# hidden #}b" << "ab";
        QTest::newRow("markup") << "{{ '<b>'|safe + '<i>' }} {{ '<x>'|e }} {{ '<b>' ~ '<i>'|safe }}" << "<b>&lt;i&gt; &lt;x&gt; <b><i>";
        // Python's str.format and comparisons across types, rendered by Jinja2 (sandboxed, as the goldens)
        QTest::newRow("str.format 0") << QStringLiteral("{{ '{} and {}'.format('a', 1) }}") << QStringLiteral("a and 1");
        QTest::newRow("str.format 1") << QStringLiteral("{{ '{1}-{0}'.format('a', 'b') }}") << QStringLiteral("b-a");
        QTest::newRow("str.format 2") << QStringLiteral("{{ '{name}!'.format(name='Ann') }}") << QStringLiteral("Ann!");
        QTest::newRow("str.format 3") << QStringLiteral("{{ '{{literal}} {}'.format(3) }}") << QStringLiteral("{literal} 3");
        QTest::newRow("str.format 4") << QStringLiteral("{{ '{:>6}|{:<6}|{:^7}|'.format('ab', 'cd', 'ef') }}") << QStringLiteral("    ab|cd    |  ef   |");
        QTest::newRow("str.format 5") << QStringLiteral("{{ '{:*^9}'.format('mid') }}") << QStringLiteral("***mid***");
        QTest::newRow("str.format 6") << QStringLiteral("{{ '{:05d}|{:+d}|{: d}|{:,}'.format(42, 7, 3, 1234567) }}") << QStringLiteral("00042|+7| 3|1,234,567");
        QTest::newRow("str.format 7") << QStringLiteral("{{ '{:x} {:X} {:#x} {:o} {:b} {:#b}'.format(255, 255, 255, 8, 5, 5) }}") << QStringLiteral("ff FF 0xff 10 101 0b101");
        QTest::newRow("str.format 8") << QStringLiteral("{{ '{:.2f}|{:8.3f}|{:e}|{:.1%}'.format(3.14159, 2.5, 12345.678, 0.256) }}") << QStringLiteral("3.14|   2.500|1.234568e+04|25.6%");
        QTest::newRow("str.format 9") << QStringLiteral("{{ '{:g}|{:.3g}|{}|{}'.format(0.0001, 1234.5, 1.5, 2.0) }}") << QStringLiteral("0.0001|1.23e+03|1.5|2.0");
        QTest::newRow("str.format 10") << QStringLiteral("{{ '{:.3}'.format('abcdef') }}") << QStringLiteral("abc");
        QTest::newRow("str.format 11") << QStringLiteral("{{ '{!r} {!s}'.format('x', 'y') }}") << QStringLiteral("'x' y");
        QTest::newRow("str.format 12") << QStringLiteral("{{ '{0[a]} {0[b][1]}'.format({'a': 1, 'b': [5, 6]}) }}") << QStringLiteral("1 6");
        QTest::newRow("str.format 13") << QStringLiteral("{{ '{:d}'.format(true) }}|{{ '{}'.format(true) }}|{{ '{}'.format(none) }}|{{ '{}'.format([1, 'a']) }}") << QStringLiteral("1|True|None|[1, 'a']");
        QTest::newRow("str.format 14") << QStringLiteral("{{ '{:>5}'.format(-3) }}|{{ '{:=6}'.format(-3) }}|{{ '{:06.2f}'.format(-1.5) }}") << QStringLiteral("   -3|-    3|-01.50");
        QTest::newRow("str.format 15") << QStringLiteral("{{ '{:.2f}'.format(3) }}|{{ '{:5}'.format(1.25) }}|{{ '{:,.2f}'.format(1234567.891) }}") << QStringLiteral("3.00| 1.25|1,234,567.89");
        QTest::newRow("str.format 16") << QStringLiteral("{{ 1 == '1' }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ none == none }}|{{ [1] == [1.0] }}|{{ 'a' != 1 }}") << QStringLiteral("False|True|True|True|True|True");
    }
    void expressions() {
        QFETCH(QString, source);
        QFETCH(QString, expected);
        Json context = {{"xs", Json::array({{{"t", 1}, {"n", "a"}}, {{"t", 2}, {"n", "b"}}, {{"t", 1}, {"n", "c"}}})}};
        QCOMPARE(QString::fromStdString(render(source.toStdString(), context)), expected);
    }

    void errorsCarryPositions_data() {
        QTest::addColumn<QString>("source");
        QTest::addColumn<QString>("message");
        QTest::addColumn<int>("line");
        QTest::newRow("unknown filter") << "line one\n{{ x | frobnicate }}" << "unknown filter 'frobnicate'" << 2;
        QTest::newRow("unclosed if") << "{% if true %}\nabc" << "unclosed block" << 2;
        QTest::newRow("unclosed tag") << "\n\n{{ x " << "unclosed '{{'" << 3;
        QTest::newRow("unknown statement") << "{% frob %}" << "unknown statement 'frob'" << 1;
        QTest::newRow("include") << "{% include 'x.html' %}" << "not allowed" << 1;
        QTest::newRow("undefined attribute") << "{{ missing.attr }}" << "undefined value" << 1;
        QTest::newRow("type error") << "\n{{ 'a' + 1 }}" << "unsupported operand" << 2;
        QTest::newRow("raise_exception") << "{{ raise_exception('Only user and assistant roles') }}" << "Only user and assistant roles" << 0;
        QTest::newRow("bad syntax") << "{{ 1 + }}" << "expected an expression" << 1;
        QTest::newRow("unclosed endraw") << "{% raw %}x{% endraw %" << "unclosed '{% endraw'" << 1;
        QTest::newRow("string doubling") << "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
                                         << "grew past" << 1;
        QTest::newRow("huge center") << "{{ 'x'|center(9999999999) }}" << "grew past" << 1;
        QTest::newRow("huge range") << "{{ range(10000000)|length }}" << "range() is too long" << 1;
        QTest::newRow("list mutation") << "{% set l = [] %}{{ l.append(1) }}" << "cannot be changed" << 1;
        // Chains of 20,000 links parse into trees that deep: evaluating them is refused (and tearing
        // them down does not recurse).
        QTest::newRow("attribute chain") << "{{ x" + QString(".a").repeated(20000) + " }}" << "nests too deeply" << 1;
        QTest::newRow("sum chain") << "{{ 1" + QString("+1").repeated(20000) + " }}" << "nests too deeply" << 1;
        QTest::newRow("filter chain") << "{{ 'x'" + QString("|trim").repeated(20000) + " }}" << "nests too deeply" << 1;
        // Values nested at run time: refused when built, and a cycle stops printing.
        QTest::newRow("nested value") << "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}"
                                      << "nests more than 200" << 1;
        QTest::newRow("cycle") << "{% set ns = namespace(x=1) %}{% set l = [ns] %}{% set ns.x = l %}{{ ns|tojson }}" << "holds the namespace itself" << 1;
        QTest::newRow("two-namespace cycle") << "{% set a = namespace() %}{% set b = namespace(y=a) %}{% set a.x = [b] %}" << "holds the namespace itself" << 1;
        // 64-bit integers: what would overflow (or trap, as the smallest integer // -1 does) is an error.
        QTest::newRow("floor division overflow") << "{{ (-9223372036854775807 - 1) // -1 }}" << "integer overflow in //" << 1;
        QTest::newRow("product overflow") << "{{ 9223372036854775807 * 2 }}" << "integer overflow in *" << 1;
        QTest::newRow("sum overflow") << "{{ 9223372036854775807 + 1 }}" << "integer overflow in +" << 1;
        QTest::newRow("power overflow") << "{{ 3 ** 64 }}" << "integer overflow in **" << 1;
        QTest::newRow("negation overflow") << "{{ -(-9223372036854775807 - 1) }}" << "integer overflow in -" << 1;
        QTest::newRow("int of nan") << "{{ (1e308 * 10 - 1e308 * 10)|int }}" << "NaN" << 1;
        QTest::newRow("int of huge float") << "{{ 1e300|int }}" << "does not fit 64 bits" << 1;
        QTest::newRow("abs overflow") << "{{ (-9223372036854775807 - 1)|abs }}" << "does not fit 64 bits" << 1;
        // str.format cannot make more than the output limit, however its fields pad; a field's
        // steps after ']' are '.' or '['.
        QTest::newRow("format padding") << QStringLiteral("{{ ('{0:99999}' * 1000).format(1) }}") << QStringLiteral("grew past") << 1;
        QTest::newRow("format after ]") << QStringLiteral("{{ '{0[a]x}'.format({'a': 1}) }}") << QStringLiteral("Only '.' or '[' may follow ']'") << 1;
        // Python's errors as Jinja2 raises them: ordering across types names the operator; str.format's mistakes.
        QTest::newRow("python error 0") << QStringLiteral("{{ 1 < 'a' }}") << QStringLiteral("'<' not supported between instances of 'int' and 'str'") << 1;
        QTest::newRow("python error 1") << QStringLiteral("{{ 'a' > 2 }}") << QStringLiteral("'>' not supported between instances of 'str' and 'int'") << 1;
        QTest::newRow("python error 2") << QStringLiteral("{{ [1] <= ['a'] }}") << QStringLiteral("'<=' not supported between instances of 'int' and 'str'") << 1;
        QTest::newRow("python error 3") << QStringLiteral("{{ none >= 1 }}") << QStringLiteral("'>=' not supported between instances of 'NoneType' and 'int'") << 1;
        QTest::newRow("python error 4") << QStringLiteral("{{ '{} {}'.format(1) }}") << QStringLiteral("tuple index out of range") << 1;
        QTest::newRow("python error 5") << QStringLiteral("{{ '{0} {}'.format(1, 2) }}") << QStringLiteral("cannot switch from manual field specification to automatic field numbering") << 1;
        QTest::newRow("python error 6") << QStringLiteral("{{ '{x}'.format(y=1) }}") << QStringLiteral("'x'") << 1;
        QTest::newRow("python error 7") << QStringLiteral("{{ '{:d}'.format('a') }}") << QStringLiteral("Unknown format code 'd' for object of type 'str'") << 1;
        QTest::newRow("python error 8") << QStringLiteral("{{ '{:5}'.format([1]) }}") << QStringLiteral("unsupported format string passed to list.__format__") << 1;
        QTest::newRow("python error 9") << QStringLiteral("{{ '}'.format() }}") << QStringLiteral("Single '}' encountered in format string") << 1;
        QTest::newRow("python error 10") << QStringLiteral("{{ '{'.format() }}") << QStringLiteral("Single '{' encountered in format string") << 1;
        QTest::newRow("python error 11") << QStringLiteral("{{ '{:.2d}'.format(3) }}") << QStringLiteral("Precision not allowed in integer format specifier") << 1;
        QTest::newRow("python error 12") << QStringLiteral("{{ '{:+}'.format('a') }}") << QStringLiteral("Sign not allowed in string format specifier") << 1;
    }
    // A template that loops for long is stopped by the time budget, or at once by its cancel flag.
    void longRendersStop() {
        const Template t = Template::parse("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        RenderOptions options;
        options.limits.maxSteps = std::numeric_limits<std::int64_t>::max();
        options.limits.maxSeconds = 0.2;
        QElapsedTimer timer;
        timer.start();
        try {
            (void)t.render(Json::object(), options);
            QFAIL("an endless render finished");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("ran too long"), e.what());
        }
        QVERIFY(timer.elapsed() < 5000);
        std::atomic<bool> cancel{true};
        options.limits.maxSeconds = 1000;
        options.cancel = &cancel;
        try {
            (void)t.render(Json::object(), options);
            QFAIL("a cancelled render finished");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("the render was stopped"), e.what());
        }
    }

    void deepContextIsRefused() {
        Json deep = Json::array();
        for (int i = 0; i < 300; ++i) deep = Json::array({deep});
        try {
            render("{{ x|length }}", Json{{"x", deep}});
            QFAIL("a context 300 levels deep rendered");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("nests more than 200 levels"), e.what());
        }
    }

    void integerEdges() {
        // Python's answers where 64 bits hold them.
        QCOMPARE(QString::fromStdString(render("{{ (-9223372036854775807 - 1) % -1 }} {{ 7 % -1 }} {{ (-1) ** 9999999999 }} {{ 1 ** 9999999999 }}"
                                               " {{ 0 ** 0 }} {{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 1e18|int }}")),
                 QStringLiteral("0 0 -1 1 1 4611686018427387904 -9223372036854775808 1000000000000000000"));
        QCOMPARE(QString::fromStdString(render("{{ range(9223372036854775800, 9223372036854775807, 5)|list }}")),
                 QStringLiteral("[9223372036854775800, 9223372036854775805]"));
    }
    void errorsCarryPositions() {
        QFETCH(QString, source);
        QFETCH(QString, message);
        QFETCH(int, line);
        try {
            render(source.toStdString());
            QFAIL("no error");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromStdString(e.what()).contains(message), e.what());
            if (line > 0) QCOMPARE(e.line(), line);
        }
    }

    void builtinTemplates_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("expected");
        QTest::newRow("chatml") << "chatml"
                                << "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<image><|im_end|>\n"
                                   "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n";
        QTest::newRow("llama3") << "llama3"
                                << "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                                   "Hi<image><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>"
                                   "\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        QTest::newRow("llama2") << "llama2" << "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi<image> [/INST] Hello </s><s>[INST] Bye [/INST]";
        QTest::newRow("mistral") << "mistral" << "<s>[INST] Be brief.\n\nHi<image>[/INST]Hello</s>[INST] Bye[/INST]";
        QTest::newRow("gemma") << "gemma"
                               << "<s><start_of_turn>user\nBe brief.\n\nHi<image><end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
                                  "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n";
        QTest::newRow("phi3") << "phi3" << "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<image><|end|>\n<|assistant|>\nHello<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n";
        QTest::newRow("zephyr") << "zephyr" << "<|system|>\nBe brief.</s>\n<|user|>\nHi<image></s>\n<|assistant|>\nHello</s>\n<|user|>\nBye</s>\n<|assistant|>\n";
        QTest::newRow("completion") << "completion" << "Be brief.\n\nUser: Hi<image>\nAssistant: Hello\nUser: Bye\nAssistant:";
    }
    void builtinTemplates() {
        QFETCH(QString, name);
        QFETCH(QString, expected);
        const Json messages = Json::parse(R"([{"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}]},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}])");
        const auto t = lumen::inference::ChatTemplate::builtin(name.toStdString());
        const Json extra = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
        QCOMPARE(QString::fromStdString(t.apply(messages, true, nullptr, extra)), expected);
    }

    void builtinErrors() {
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, lumen::inference::ChatTemplate::builtin("nope"));
        const auto t = lumen::inference::ChatTemplate::builtin("llama2");
        const Json twoUsers = Json::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])");
        try {
            t.apply(twoUsers, true);
            QFAIL("non-alternating roles accepted");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromStdString(e.reason()).contains("alternate"), e.what());
        }
    }

    void sandboxLimits() {
        RenderOptions options = fixedClock();
        options.limits.maxSteps = 10000;
        try {
            Template::parse("{% for i in range(100) %}{% for j in range(100) %}{% for k in range(100) %}x{% endfor %}{% endfor %}{% endfor %}")
                .render(Json::object(), options);
            QFAIL("runaway loop finished");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("ran too long"), e.what());
        }
        try {
            Template::parse("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").render(Json::object(), options);
            QFAIL("infinite recursion finished");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("nest deeper"), e.what());
        }
        options.limits.maxOutputBytes = 1000;
        options.limits.maxSteps = 1'000'000;
        try {
            Template::parse("{% for i in range(1000) %}0123456789{% endfor %}").render(Json::object(), options);
            QFAIL("huge output finished");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("output grew past"), e.what());
        }
        try {
            Template::parse("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
            QFAIL("deep nesting parsed");
        } catch (const TemplateError& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains("nests too deeply"), e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestJinja)
#include "tst_jinja.moc"
