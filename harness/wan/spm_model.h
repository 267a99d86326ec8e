#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace profdit::wan {

// The parts of a SentencePiece model file (sentencepiece_model.proto's ModelProto) that encoding reads:
// the pieces with their scores and types, TrainerSpec's model type and byte fallback, and NormalizerSpec.
struct SpmPiece {
    enum Type { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
    std::string text;
    float       score = 0.0f;
    Type        type  = kNormal;
};

struct SpmModelProto {
    enum ModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };
    std::vector<SpmPiece> pieces;  // id = index
    // TrainerSpec
    ModelType model_type                 = kUnigram;
    bool      byte_fallback              = false;
    bool      treat_whitespace_as_suffix = false;
    // NormalizerSpec
    std::string normalizer_name;       // informational: the rules themselves are in precompiled_charsmap
    std::string precompiled_charsmap;  // empty for "identity"
    bool        add_dummy_prefix         = true;
    bool        remove_extra_whitespaces = true;
    bool        escape_whitespaces       = true;
};

// Parses a serialized ModelProto; `path` names the file in errors (InputError for malformed data).
SpmModelProto parse_spm_model(std::string_view bytes, const std::string& path);

// Reads and parses a model file; InputError naming the path when it cannot be read or parsed.
SpmModelProto read_spm_model(const std::string& path);

}  // namespace profdit::wan
