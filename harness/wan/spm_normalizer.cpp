#include "wan/spm_normalizer.h"

#include <cstring>

#include "common/error.h"

namespace profdit::wan {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped ' '
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

uint32_t read_le32(const char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

// darts-clone's DoubleArrayUnit fields.
bool     unit_has_leaf(uint32_t u) { return ((u >> 8) & 1) == 1; }
uint32_t unit_value(uint32_t u) { return u & ((1U << 31) - 1); }
uint32_t unit_label(uint32_t u) { return u & ((1U << 31) | 0xFF); }
uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); }

bool is_trail(unsigned char b) { return (b & 0xC0) == 0x80; }
bool valid_code_point(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

// The length of the valid UTF-8 character at the start of `s`, or 0 when it is malformed (string_util::DecodeUTF8).
size_t valid_utf8_len(std::string_view s) {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    if (b(0) < 0x80) return 1;
    if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
        const uint32_t cp = ((b(0) & 0x1Fu) << 6) | (b(1) & 0x3Fu);
        if (is_trail(b(1)) && cp >= 0x80 && valid_code_point(cp)) return 2;
    } else if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
        const uint32_t cp = ((b(0) & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
        if (is_trail(b(1)) && is_trail(b(2)) && cp >= 0x800 && valid_code_point(cp)) return 3;
    } else if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
        const uint32_t cp = ((b(0) & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
        if (is_trail(b(1)) && is_trail(b(2)) && is_trail(b(3)) && cp >= 0x10000 && valid_code_point(cp)) return 4;
    }
    return 0;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && std::string_view(s).substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

size_t spm_one_char_len(char lead) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[static_cast<unsigned char>(lead) >> 4]; }

SpmNormalizer::SpmNormalizer(const SpmModelProto& model, const std::vector<std::string>& user_defined, const std::string& path)
    : path_(path),
      add_dummy_prefix_(model.add_dummy_prefix),
      remove_extra_whitespaces_(model.remove_extra_whitespaces),
      escape_whitespaces_(model.escape_whitespaces),
      whitespace_as_suffix_(model.treat_whitespace_as_suffix) {
    std::vector<std::pair<std::string, int>> symbols;
    for (const auto& s : user_defined) symbols.emplace_back(s, 0);
    user_defined_ = SpmPrefixIndex(std::move(symbols));

    const std::string& blob = model.precompiled_charsmap;
    if (blob.empty()) return;  // identity
    const std::string where = path + ": normalizer_spec.precompiled_charsmap (" + model.normalizer_name + ")";
    if (blob.size() <= 4) input_error(where + ": " + std::to_string(blob.size()) + " bytes, too short");
    const uint32_t trie_bytes = read_le32(blob.data());
    if (trie_bytes >= blob.size() - 4 || trie_bytes % 4 != 0 || trie_bytes == 0)
        input_error(where + ": trie size " + std::to_string(trie_bytes) + " does not fit the " + std::to_string(blob.size()) + "-byte blob");
    trie_.resize(trie_bytes / 4);
    for (size_t i = 0; i < trie_.size(); ++i) trie_[i] = read_le32(blob.data() + 4 + 4 * i);
    replacements_ = blob.substr(4 + trie_bytes);
    if (replacements_.back() != '\0') input_error(where + ": the replacement strings are not NUL-terminated");
}

std::pair<size_t, uint32_t> SpmNormalizer::longest_rule(std::string_view input) const {
    // darts-clone DoubleArray::commonPrefixSearch, keeping the longest hit.
    std::pair<size_t, uint32_t> best{0, 0};
    if (trie_.empty()) return best;
    size_t node = unit_offset(trie_[0]);
    for (size_t i = 0; i < input.size(); ++i) {
        const auto c = static_cast<unsigned char>(input[i]);
        node ^= c;
        if (node >= trie_.size()) break;
        const uint32_t unit = trie_[node];
        if (unit_label(unit) != c) break;
        node ^= unit_offset(unit);
        if (node >= trie_.size()) break;
        if (unit_has_leaf(unit)) best = {i + 1, unit_value(trie_[node])};
    }
    return best;
}

std::pair<std::string_view, size_t> SpmNormalizer::normalize_prefix(std::string_view input) const {
    size_t symbol = 0;
    user_defined_.for_each_prefix(input, [&](size_t length, int) { symbol = length; });
    if (symbol > 0) return {input.substr(0, symbol), symbol};

    const auto [length, offset] = longest_rule(input);
    if (length > 0) {
        if (offset >= replacements_.size())
            input_error(path_ + ": precompiled_charsmap: replacement offset " + std::to_string(offset) + " is outside the " +
                        std::to_string(replacements_.size()) + "-byte table");
        return {std::string_view(replacements_.data() + offset), length};  // up to its NUL
    }
    const size_t n = valid_utf8_len(input);
    if (n == 0) return {kReplacementChar, 1};  // one malformed byte
    return {input.substr(0, n), n};
}

std::string SpmNormalizer::normalize(std::string_view input) const {
    std::string out;
    if (remove_extra_whitespaces_) {
        while (!input.empty()) {
            const auto [norm, consumed] = normalize_prefix(input);
            if (norm != " ") break;
            input.remove_prefix(consumed);
        }
    }
    if (input.empty()) return out;

    const std::string_view space = escape_whitespaces_ ? kSpaceSymbol : std::string_view(" ");
    if (!whitespace_as_suffix_ && add_dummy_prefix_) out += space;

    bool prev_space = remove_extra_whitespaces_;
    while (!input.empty()) {
        auto [norm, consumed] = normalize_prefix(input);
        if (prev_space)
            while (!norm.empty() && norm.front() == ' ') norm.remove_prefix(1);
        if (!norm.empty()) {
            for (const char c : norm) {
                if (escape_whitespaces_ && c == ' ') out += kSpaceSymbol;
                else out += c;
            }
            prev_space = norm.back() == ' ';
        }
        input.remove_prefix(consumed);
        if (!remove_extra_whitespaces_) prev_space = false;
    }
    if (remove_extra_whitespaces_)
        while (ends_with(out, space)) out.resize(out.size() - space.size());
    if (whitespace_as_suffix_ && add_dummy_prefix_) out += space;
    return out;
}

}  // namespace profdit::wan
