#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wan/spm_model.h"
#include "wan/spm_prefix_index.h"

namespace profdit::wan {

// SentencePiece's text normalizer (normalizer.cc), as its encoder runs it before segmentation:
//  - the precompiled_charsmap rules (a darts-clone double-array trie of source strings whose values point
//    at NUL-terminated replacements; the longest match wins). This is how every named rule set (nmt_nfkc,
//    nfkc, nmt_nfkc_cf, nfkc_cf) and custom TSV rules are stored, so all of them are data here; identity
//    has no charsmap. User-defined symbols are matched first and kept as they are.
//  - invalid UTF-8: each bad byte becomes U+FFFD;
//  - remove_extra_whitespaces (leading, trailing and repeated spaces), add_dummy_prefix (a space before
//    the text, or after it when treat_whitespace_as_suffix), escape_whitespaces (' ' -> U+2581).
class SpmNormalizer {
  public:
    // `user_defined` are the USER_DEFINED pieces; `path` names the model file in errors.
    SpmNormalizer(const SpmModelProto& model, const std::vector<std::string>& user_defined, const std::string& path);

    std::string normalize(std::string_view input) const;

  private:
    // The normalized form of the longest rule (or user-defined symbol, or one character) at the start of
    // `input`, and how many input bytes it consumes.
    std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
    // The longest charsmap source string at the start of `input`: (length, replacement offset); length 0 if none.
    std::pair<size_t, uint32_t> longest_rule(std::string_view input) const;

    std::string           path_;
    std::vector<uint32_t> trie_;        // darts-clone units
    std::string           replacements_;  // NUL-terminated strings, addressed by the trie's values
    SpmPrefixIndex        user_defined_;
    bool add_dummy_prefix_, remove_extra_whitespaces_, escape_whitespaces_, whitespace_as_suffix_;
};

// The byte length of the UTF-8 character starting with `lead`, from the lead byte alone (1 for a
// continuation or invalid byte), as SentencePiece's string_util::OneCharLen.
size_t spm_one_char_len(char lead);

}  // namespace profdit::wan
