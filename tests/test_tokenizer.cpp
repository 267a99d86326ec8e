// profdit's own SentencePiece encoder (wan/sentencepiece.h) against SentencePiece itself: models trained
// here with Debian's spm_train, then the ids of several hundred strings (ASCII, CJK, emoji, combining
// marks, compatibility characters, repeated and exotic whitespace, HTML entities, control characters,
// malformed UTF-8, very long input) compared with `spm_encode --output_format=id`, one model per
// normalizer/option set that umT5-style models use. Also the model-file errors.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "spiece_fixture.h"
#include "test_util.h"
#include "wan/sentencepiece.h"
#include "wan/tokenizer.h"

using namespace profdit;
namespace fs = std::filesystem;

namespace {

// Training lines beyond the captions: a few scripts, emoji and accented words, so the vocabulary has
// multi-character pieces outside ASCII. Thai, Devanagari, Hebrew and most emoji stay out: unknown there.
std::vector<std::string> mixed_corpus() {
    auto lines = test::caption_corpus();
    for (const char* l : {
             "日本語のテキストも少し含める。東京は大きい都市です",
             "中文句子：你好世界，今天天气很好。",
             "한국어 문장도 있습니다 안녕하세요",
             "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xC3\xBC" "ber stra\xC3\x9F" "e",
             "emoji \xF0\x9F\x98\x80 \xF0\x9F\x8E\x89 party time",
             "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC \xD1\x80\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9 text",
             "numbers 123 456 7890 and symbols # @ % ( ) [ ] { } < > & ; : ' \" / \\",
         })
        lines.emplace_back(l);
    return lines;
}

// Fragments the test strings are built from (no '\n', '\r' or NUL: spm_encode reads one string a line).
const std::vector<std::string>& fragments() {
    static const std::vector<std::string> f = {
        // ASCII
        "a", "cat", "the", "running", "park", "sunset", "Hello", "WORLD", "x1", "42", "3.14", "don't", "e-mail", "C++",
        "foo_bar", "#tag", "@user", "(paren)", "[b]", "{c}", "\"quoted\"", "a/b\\c", "~!$%^*=+|<>?", "`tick`", "seagulls",
        "kitchen,", "rises.", "ABCDEFG", "zzzz", "qqq",
        // CJK, Hangul, kana (halfwidth katakana and Hangul jamo are changed by NFKC)
        "日本語", "東京", "中文", "你好世界", "天气", "한국어", "안녕하세요", "\xEF\xBD\xB6\xEF\xBE\x80\xEF\xBD\xB6\xEF\xBE\x85",
        "カタカナ", "ひらがな", "漢字", "\xF0\xA0\xAE\xB7", "\xE1\x84\x80\xE1\x85\xA1", "。", "，", "：",
        // emoji: plain, skin tone, ZWJ family, flag, variation selector
        "\xF0\x9F\x98\x80", "\xF0\x9F\x8E\x89", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
        "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",
        "\xE2\x9D\xA4\xEF\xB8\x8F", "\xE2\x9C\xA8", "\xF0\x9F\x90\xB1",
        // combining marks and compatibility characters
        "e\xCC\x81", "a\xCC\x88", "n\xCC\x83", "x\xCC\xA7\xCC\x81", "\xEF\xAC\x81", "\xE2\x91\xA0", "\xEF\xBC\xA1\xEF\xBC\xA2",
        "\xE3\x8E\x8F", "\xC2\xBD", "\xE2\x84\xA2", "\xE2\x84\x8C", "\xC3\xA9", "caf\xC3\xA9", "na\xC3\xAFve", "stra\xC3\x9F" "e",
        "\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93",
        // scripts absent from the training corpus
        "\xE0\xB9\x84\xE0\xB8\x97\xE0\xB8\xA2", "\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D\xE0\xA4\xA6\xE0\xA5\x80",
        "\xD7\xA2\xD7\x91\xD7\xA8\xD7\x99\xD7\xAA", "\xD8\xA7\xD9\x84\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A\xD8\xA9",
        "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC", "\xD1\x80\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9",
        // whitespace, visible and not
        " ", "  ", "     ", "\t", "\t\t", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x83", "\xE2\x80\x8B", "\xE2\x80\x8D",
        "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81",
        // HTML entities (SentencePiece sees them as they are; Tokenizer::clean unescapes them first)
        "&amp;", "&lt;b&gt;", "&#39;", "&nbsp;", "&quot;", "&#x1F600;", "&", ";", "&amp;amp;",
        // control characters, special-piece look-alikes, malformed UTF-8
        "\x01", "\x1F", "\x7F", "\xC2\x85", "<unk>", "</s>", "<pad>", "<0x41>", "\xFF", "\xC3", "\xED\xA0\x80", "\xE2\x82",
    };
    return f;
}

// The strings compared: every fragment alone, seeded random mixtures of them (with and without
// separators, leading and trailing whitespace), and very long inputs.
std::vector<std::string> parity_strings() {
    std::vector<std::string> out = fragments();
    std::mt19937             rng(20);  // fixed: the same strings on every machine
    const auto&              f = fragments();
    const char*              seps[] = {"", " ", " ", " ", "  ", "\t", "\xE3\x80\x80"};
    for (int i = 0; i < 600; ++i) {
        const int   n = 1 + int(rng() % 12);
        std::string s = rng() % 5 == 0 ? "  " : "";
        for (int k = 0; k < n; ++k) {
            if (k > 0) s += seps[rng() % (sizeof seps / sizeof *seps)];
            s += f[rng() % f.size()];
        }
        if (rng() % 5 == 0) s += " \t ";
        out.push_back(s);
    }
    std::string long_mix, long_rep, long_cjk, long_spaces = "start";
    while (long_mix.size() < 20000) long_mix += f[rng() % f.size()] + (rng() % 3 ? " " : "");
    for (int i = 0; i < 5000; ++i) long_rep += "ab ";
    for (int i = 0; i < 3000; ++i) long_cjk += "東京日本語";
    for (int i = 0; i < 2000; ++i) long_spaces += (i % 7 ? " " : " word ");
    out.insert(out.end(), {long_mix, long_rep, long_cjk, long_spaces + "end", std::string(10000, 'a'), ""});
    return out;
}

// Printable form of a test string for failure messages.
std::string escaped(const std::string& s) {
    std::ostringstream os;
    for (const char c : s.substr(0, 200)) {
        const auto b = static_cast<unsigned char>(c);
        if (b >= 0x20 && b < 0x7F) os << c;
        else os << "\\x" << std::hex << (b >> 4) << (b & 0xF) << std::dec;
    }
    if (s.size() > 200) os << "...(" << s.size() << " bytes)";
    return os.str();
}

std::string ids_text(const std::vector<int>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size() && i < 60; ++i) s += (i ? " " : "") + std::to_string(ids[i]);
    return s + (ids.size() > 60 ? " ...(" + std::to_string(ids.size()) + " ids)" : "");
}

// `spm_encode --output_format=id` of each string, one vector per string.
std::vector<std::vector<int>> spm_encode_ids(const std::string& model, const std::vector<std::string>& strings, const std::string& dir) {
    const std::string in = dir + "/parity_input.txt";
    {
        std::ofstream f(in, std::ios::binary);
        for (const auto& s : strings) f << s << "\n";
    }
    const auto r = test::run_command("spm_encode --model='" + model + "' --output_format=id < '" + in + "'");
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<std::vector<int>> out;
    std::istringstream            lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        out.emplace_back();
        for (int id; words >> id;) out.back().push_back(id);
    }
    return out;
}

// Trains a model with `args` under a per-process folder `name` and compares every parity string;
// returns the number compared.
size_t expect_parity(const std::string& name, int vocab, const std::string& args) {
    const std::string dir   = (fs::temp_directory_path() / ("profdit-spm-parity-" + std::to_string(::getpid())) / name).string();
    const std::string model = test::train_test_spiece(dir, vocab, args, mixed_corpus());
    const auto        sp    = wan::SentencePiece::load(model);
    const auto        strings  = parity_strings();
    const auto        expected = spm_encode_ids(model, strings, dir);
    EXPECT_EQ(expected.size(), strings.size()) << "spm_encode gave one line per input string";
    if (expected.size() != strings.size()) return 0;
    size_t mismatches = 0;
    for (size_t i = 0; i < strings.size(); ++i) {
        const auto got = sp.encode(strings[i]);
        if (got == expected[i]) continue;
        if (++mismatches <= 10)
            ADD_FAILURE() << name << " string " << i << " '" << escaped(strings[i]) << "'\n  spm_encode: " << ids_text(expected[i])
                          << "\n  profdit:    " << ids_text(got) << "\n  normalized: '" << escaped(sp.normalize(strings[i])) << "'";
    }
    EXPECT_EQ(mismatches, 0u) << "of " << strings.size() << " strings";
    std::cout << "[ measured ] " << name << ": " << strings.size() - mismatches << " of " << strings.size()
              << " strings give spm_encode's ids\n";
    return strings.size();
}

}  // namespace

TEST(SentencePieceParity, StringSetIsLargeAndVaried) {
    const auto s = parity_strings();
    EXPECT_GE(s.size(), 500u);
    size_t long_ones = 0;
    for (const auto& x : s) long_ones += x.size() >= 10000;
    EXPECT_GE(long_ones, 4u);
}

// umT5's configuration: nmt_nfkc normalization, byte fallback for unknown characters.
TEST(SentencePieceParity, NmtNfkcWithByteFallback) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    EXPECT_GE(expect_parity("nmt_nfkc_bytes", 500, "--normalization_rule_name=nmt_nfkc --byte_fallback=true"), 500u);
}

// No normalization rules at all; unknown characters become <unk> (id 2).
TEST(SentencePieceParity, IdentityWithUnknowns) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    EXPECT_GE(expect_parity("identity_unk", 200, "--normalization_rule_name=identity"), 500u);
}

// User-defined symbols (kept whole, never normalized), case-folding NFKC, no dummy prefix and whitespace
// kept as it is.
TEST(SentencePieceParity, UserSymbolsCaseFoldKeepWhitespace) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    EXPECT_GE(expect_parity("user_symbols", 200,
                            "--normalization_rule_name=nfkc_cf '--user_defined_symbols=<sep>,[X],&amp;,\xF0\x9F\x98\x80' "
                            "--add_dummy_prefix=false --remove_extra_whitespaces=false"),
              500u);
}

// The whitespace symbol as a suffix (the dummy space goes after the text).
TEST(SentencePieceParity, WhitespaceAsSuffix) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    EXPECT_GE(expect_parity("suffix", 500, "--treat_whitespace_as_suffix=true --byte_fallback=true"), 500u);
}

// The umT5 tokenizer is the SentencePiece ids of the cleaned text plus EOS.
TEST(SentencePieceParity, TokenizerIsCleanedIdsPlusEos) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const std::string dir   = (fs::temp_directory_path() / ("profdit-spm-parity-" + std::to_string(::getpid())) / "tokenizer").string();
    const std::string model = test::train_test_spiece(dir, 500, "--byte_fallback=true", mixed_corpus());
    const auto        tok   = wan::Tokenizer::load(model);
    const std::vector<std::string> prompts = {"a cat  sits &amp;amp; looks\t at 東京 \xF0\x9F\x98\x80", "  ", "caf\xC3\xA9 &lt;b&gt;"};
    std::vector<std::string>       cleaned;
    for (const auto& p : prompts) cleaned.push_back(wan::Tokenizer::clean(p));
    const auto expected = spm_encode_ids(model, cleaned, dir);
    ASSERT_EQ(expected.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        const auto e   = tok.encode(prompts[i], 64);
        auto       ids = e.ids[0].narrow(0, 0, e.length).contiguous();
        std::vector<int> got(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + e.length);
        auto want = expected[i];
        want.push_back(1);
        EXPECT_EQ(got, want) << escaped(prompts[i]);
    }
}

TEST(SentencePieceErrors, UnsupportedModelTypeIsNamed) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const std::string dir   = test::temp_dir();
    const std::string model = test::train_test_spiece(dir, 64, "--model_type=bpe");
    const auto        msg   = test::input_error_of([&] { wan::SentencePiece::load(model); });
    EXPECT_NE(msg.find(model), std::string::npos) << msg;
    EXPECT_NE(msg.find("model_type BPE"), std::string::npos) << msg;
}

TEST(SentencePieceErrors, TruncatedOrForeignFileIsNamed) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const std::string dir   = test::temp_dir();
    const std::string model = test::train_test_spiece(dir + "/m", 64);
    std::ifstream     in(model, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/cut.model", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    auto msg = test::input_error_of([&] { wan::SentencePiece::load(dir + "/cut.model"); });
    EXPECT_NE(msg.find(dir + "/cut.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("malformed protobuf"), std::string::npos) << msg;
    std::ofstream(dir + "/json.model") << "{\"not\": \"a model\"}";
    msg = test::input_error_of([&] { wan::SentencePiece::load(dir + "/json.model"); });
    EXPECT_NE(msg.find(dir + "/json.model"), std::string::npos) << msg;
    msg = test::input_error_of([&] { wan::SentencePiece::load(dir + "/absent.model"); });
    EXPECT_NE(msg.find(dir + "/absent.model"), std::string::npos) << msg;
}
