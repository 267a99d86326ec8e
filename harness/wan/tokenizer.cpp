#include "wan/tokenizer.h"

#include <cctype>
#include <filesystem>
#include <vector>

#include "common/error.h"
#include "wan/sentencepiece.h"

namespace profdit::wan {

namespace {

constexpr int kPadId = 0;
constexpr int kEosId = 1;

// Decodes one UTF-8 code point at s[i]; returns its byte length (1 for an invalid byte, cp = -1).
size_t decode_utf8(const std::string& s, size_t i, int32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t     n  = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
        cp = -1;
        return 1;
    }
    cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b >> 6) != 0x2) {
            cp = -1;
            return 1;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    return n;
}

void append_utf8(std::string& out, int64_t cp) {
    if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;  // as Python's html.unescape
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// Python's str.isspace(), which is what re's \s and str.strip() use.
bool is_space(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int hex_value(char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10); }

// html.unescape for numeric references (&#65; &#x41;, ';' optional) and the common named entities
// (amp, lt, gt, quot, nbsp with or without ';', apos with it). Other named entities stay as they are.
std::string html_unescape(const std::string& s) {
    struct Named {
        const char* name;
        const char* text;
        bool        needs_semicolon;
    };
    static const Named kNamed[] = {{"amp", "&", false},  {"lt", "<", false},          {"gt", ">", false},
                                   {"quot", "\"", false}, {"nbsp", "\xC2\xA0", false}, {"apos", "'", true}};
    std::string out;
    size_t      i = 0;
    while (i < s.size()) {
        if (s[i] != '&') {
            out += s[i++];
            continue;
        }
        if (i + 1 < s.size() && s[i + 1] == '#') {
            size_t j   = i + 2;
            bool   hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
            if (hex) ++j;
            const size_t start = j;
            int64_t      cp    = 0;
            while (j < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) : std::isdigit(static_cast<unsigned char>(s[j])))) {
                if (cp <= 0x10FFFF) cp = cp * (hex ? 16 : 10) + hex_value(s[j]);
                ++j;
            }
            if (j > start) {
                if (j < s.size() && s[j] == ';') ++j;
                append_utf8(out, cp);
                i = j;
                continue;
            }
        } else {
            bool matched = false;
            for (const auto& e : kNamed) {
                const std::string name = e.name;
                if (s.compare(i + 1, name.size(), name) != 0) continue;
                const size_t after = i + 1 + name.size();
                const bool   semi  = after < s.size() && s[after] == ';';
                if (!semi && e.needs_semicolon) continue;
                out += e.text;
                i       = after + (semi ? 1 : 0);
                matched = true;
                break;
            }
            if (matched) continue;
        }
        out += s[i++];
    }
    return out;
}

}  // namespace

struct Tokenizer::Impl {
    SentencePiece sp;
};

// Wan's basic_clean also runs ftfy.fix_text first (mojibake / broken-unicode repair); ftfy is a Python
// package with no C++ counterpart here, so well-formed UTF-8 prompts give the same text and broken ones
// may not.
std::string Tokenizer::clean(const std::string& text) {
    const std::string s = html_unescape(html_unescape(text));
    std::string       out;
    bool              pending_space = false;
    for (size_t i = 0; i < s.size();) {
        int32_t      cp = 0;
        const size_t n  = decode_utf8(s, i, cp);
        if (cp >= 0 && is_space(cp)) {
            pending_space = true;
        } else {
            if (pending_space && !out.empty()) out += ' ';
            pending_space = false;
            out.append(s, i, n);
        }
        i += n;
    }
    return out;
}

Tokenizer Tokenizer::load(const std::string& spiece_model_or_folder) {
    namespace fs = std::filesystem;
    std::string model = spiece_model_or_folder;
    std::error_code ec;
    if (fs::is_directory(model, ec)) {
        const auto a = fs::path(model) / "spiece.model";
        const auto b = fs::path(model) / "tokenizer" / "spiece.model";
        if (fs::is_regular_file(a, ec)) model = a.string();
        else if (fs::is_regular_file(b, ec)) model = b.string();
        else input_error(spiece_model_or_folder + ": tokenizer folder has no spiece.model (looked for " + a.string() + " and " + b.string() + ")");
    } else if (!fs::exists(model, ec)) {
        input_error(model + ": tokenizer model not found (expected umT5's spiece.model or a folder holding it)");
    }
    Tokenizer t;
    t.impl_ = std::make_shared<const Impl>(Impl{SentencePiece::load(model)});
    return t;
}

Tokenizer::Encoded Tokenizer::encode(const std::string& text, int64_t text_len) const {
    if (text_len < 1) input_error("tokenizer: text_len must be at least 1, got " + std::to_string(text_len));
    std::vector<int> pieces = impl_->sp.encode(clean(text));
    if (int64_t(pieces.size()) > text_len - 1) pieces.resize(size_t(text_len - 1));
    pieces.push_back(kEosId);
    Encoded e;
    e.length = int64_t(pieces.size());
    e.ids    = torch::full({1, text_len}, kPadId, torch::kInt64);  // [1, text_len]
    e.mask   = torch::zeros({1, text_len}, torch::kInt64);         // [1, text_len]
    auto ids = e.ids.accessor<int64_t, 2>();
    for (int64_t i = 0; i < e.length; ++i) ids[0][i] = pieces[size_t(i)];
    e.mask.narrow(1, 0, e.length).fill_(1);
    return e;
}

const std::string& Tokenizer::path() const { return impl_->sp.path(); }

int64_t Tokenizer::vocab_size() const { return impl_->sp.piece_size(); }

}  // namespace profdit::wan
