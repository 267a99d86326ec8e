#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "wan/spm_model.h"
#include "wan/spm_normalizer.h"
#include "wan/spm_prefix_index.h"

namespace profdit::wan {

// SentencePiece encoding of a unigram model file (spiece.model), written from the model format alone:
// no libsentencepiece, no protobuf. Gives the ids SentencePieceProcessor::Encode (and `spm_encode
// --output_format=id`) gives for SentencePiece 0.1.9x: the normalizer (spm_normalizer.h), then the
// unigram Viterbi segmentation over the pieces (the library's optimized encoder: best path per byte
// position, user-defined symbols with their fixed bonus, UNUSED pieces skipped, an unknown character
// scored min_score - 10), then unknown pieces: with byte_fallback each becomes its UTF-8 bytes as <0xNN>
// pieces, without it a run of them becomes one <unk>.
// Not supported, refused at load with InputError: BPE, WORD and CHAR models. No BOS/EOS or sampling here.
class SentencePiece {
  public:
    // InputError naming `path` for an unreadable, malformed or unsupported model.
    static SentencePiece load(const std::string& path);

    std::vector<int> encode(std::string_view text) const;
    std::string      normalize(std::string_view text) const { return normalizer_.normalize(text); }

    int                 piece_size() const { return int(pieces_.size()); }
    const std::string&  path() const { return path_; }

  private:
    SentencePiece(std::string path, SpmModelProto model, std::vector<std::string> user_defined);

    std::string           path_;
    std::vector<SpmPiece> pieces_;
    SpmNormalizer         normalizer_;
    SpmPrefixIndex        vocab_;           // NORMAL, USER_DEFINED and UNUSED pieces -> id
    int                   unk_id_ = -1;
    bool                  byte_fallback_ = false;
    std::vector<int>      byte_ids_;        // byte -> id of <0xNN>, with byte_fallback
    float                 min_score_ = 0, max_score_ = 0;  // over NORMAL pieces, as the library
};

}  // namespace profdit::wan
