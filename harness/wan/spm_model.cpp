#include "wan/spm_model.h"

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/protobuf_wire.h"

namespace profdit::wan {

namespace {

// Field numbers from sentencepiece_model.proto (SentencePiece 0.1.9x).
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr uint32_t kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3, kTrainerTreatWhitespaceAsSuffix = 24, kTrainerByteFallback = 35;
constexpr uint32_t kNormName = 1, kNormCharsmap = 2, kNormAddDummyPrefix = 3, kNormRemoveExtraWhitespaces = 4,
                   kNormEscapeWhitespaces = 5;

SpmPiece parse_piece(std::string_view bytes, const std::string& context) {
    io::ProtoReader       r(bytes, context);
    io::ProtoReader::Field f;
    SpmPiece              p;
    while (r.next(f)) {
        if (f.number == kPieceText) p.text = std::string(r.as_bytes(f));
        else if (f.number == kPieceScore) p.score = r.as_float(f);
        else if (f.number == kPieceType) {
            const int64_t t = r.as_int(f);
            if (t < SpmPiece::kNormal || t > SpmPiece::kByte) input_error(context + ": unknown piece type " + std::to_string(t));
            p.type = SpmPiece::Type(t);
        }
    }
    return p;
}

void parse_trainer_spec(std::string_view bytes, const std::string& context, SpmModelProto& m) {
    io::ProtoReader       r(bytes, context);
    io::ProtoReader::Field f;
    while (r.next(f)) {
        if (f.number == kTrainerModelType) {
            const int64_t t = r.as_int(f);
            if (t < SpmModelProto::kUnigram || t > SpmModelProto::kChar) input_error(context + ": unknown model_type " + std::to_string(t));
            m.model_type = SpmModelProto::ModelType(t);
        } else if (f.number == kTrainerTreatWhitespaceAsSuffix) {
            m.treat_whitespace_as_suffix = r.as_int(f) != 0;
        } else if (f.number == kTrainerByteFallback) {
            m.byte_fallback = r.as_int(f) != 0;
        }
    }
}

void parse_normalizer_spec(std::string_view bytes, const std::string& context, SpmModelProto& m) {
    io::ProtoReader       r(bytes, context);
    io::ProtoReader::Field f;
    while (r.next(f)) {
        if (f.number == kNormName) m.normalizer_name = std::string(r.as_bytes(f));
        else if (f.number == kNormCharsmap) m.precompiled_charsmap = std::string(r.as_bytes(f));
        else if (f.number == kNormAddDummyPrefix) m.add_dummy_prefix = r.as_int(f) != 0;
        else if (f.number == kNormRemoveExtraWhitespaces) m.remove_extra_whitespaces = r.as_int(f) != 0;
        else if (f.number == kNormEscapeWhitespaces) m.escape_whitespaces = r.as_int(f) != 0;
    }
}

}  // namespace

SpmModelProto parse_spm_model(std::string_view bytes, const std::string& path) {
    io::ProtoReader       r(bytes, path + ": SentencePiece ModelProto");
    io::ProtoReader::Field f;
    SpmModelProto         m;
    while (r.next(f)) {
        if (f.number == kModelPieces) {
            m.pieces.push_back(parse_piece(r.as_bytes(f), path + ": piece " + std::to_string(m.pieces.size())));
        } else if (f.number == kModelTrainerSpec) {
            parse_trainer_spec(r.as_bytes(f), path + ": trainer_spec", m);
        } else if (f.number == kModelNormalizerSpec) {
            parse_normalizer_spec(r.as_bytes(f), path + ": normalizer_spec", m);
        }
    }
    if (m.pieces.empty()) input_error(path + ": not a SentencePiece model (no pieces)");
    return m;
}

SpmModelProto read_spm_model(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) input_error(path + ": cannot open the SentencePiece model");
    std::ostringstream ss;
    ss << f.rdbuf();
    if (!f.good() && !f.eof()) input_error(path + ": cannot read the SentencePiece model");
    return parse_spm_model(ss.str(), path);
}

}  // namespace profdit::wan
