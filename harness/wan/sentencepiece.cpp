#include "wan/sentencepiece.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "common/error.h"

namespace profdit::wan {

namespace {

constexpr float kUnkPenalty = 10.0f;  // unigram_model.h

const char* model_type_name(SpmModelProto::ModelType t) {
    switch (t) {
        case SpmModelProto::kUnigram: return "UNIGRAM";
        case SpmModelProto::kBpe: return "BPE";
        case SpmModelProto::kWord: return "WORD";
        case SpmModelProto::kChar: return "CHAR";
    }
    return "?";
}

std::string byte_piece(int byte) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
    return buf;
}

}  // namespace

SentencePiece SentencePiece::load(const std::string& path) {
    SpmModelProto model = read_spm_model(path);
    if (model.model_type != SpmModelProto::kUnigram)
        input_error(path + ": trainer_spec.model_type " + model_type_name(model.model_type) +
                    " is not supported (only UNIGRAM, the type of umT5's spiece.model)");
    std::vector<std::string> user_defined;
    for (const auto& p : model.pieces)
        if (p.type == SpmPiece::kUserDefined) user_defined.push_back(p.text);
    return SentencePiece(path, std::move(model), std::move(user_defined));
}

// The checks of ModelInterface::InitializePieces: pieces non-empty and unique, exactly one UNKNOWN, byte
// pieces only with byte_fallback and then all 256 of them.
SentencePiece::SentencePiece(std::string path, SpmModelProto model, std::vector<std::string> user_defined)
    : path_(std::move(path)), normalizer_(model, user_defined, path_), byte_fallback_(model.byte_fallback) {
    pieces_ = std::move(model.pieces);
    std::vector<std::pair<std::string, int>> vocab;
    std::set<std::string_view>               seen;
    byte_ids_.assign(256, -1);
    min_score_ = FLT_MAX;
    max_score_ = FLT_MIN;  // sic: the library starts from the smallest positive float, not -FLT_MAX
    for (int id = 0; id < int(pieces_.size()); ++id) {
        const SpmPiece& p     = pieces_[size_t(id)];
        const std::string what = path_ + ": piece " + std::to_string(id);
        if (p.text.empty()) input_error(what + " is empty");
        if (!seen.insert(p.text).second) input_error(what + " '" + p.text + "' is defined twice");
        switch (p.type) {
            case SpmPiece::kNormal:
                min_score_ = std::min(min_score_, p.score);
                max_score_ = std::max(max_score_, p.score);
                [[fallthrough]];
            case SpmPiece::kUserDefined:
            case SpmPiece::kUnused: vocab.emplace_back(p.text, id); break;
            case SpmPiece::kUnknown:
                if (unk_id_ >= 0) input_error(what + ": a second UNKNOWN piece (the first is " + std::to_string(unk_id_) + ")");
                unk_id_ = id;
                break;
            case SpmPiece::kByte: {
                if (!byte_fallback_) input_error(what + ": byte piece '" + p.text + "' although trainer_spec.byte_fallback is false");
                int byte = -1;
                for (int b = 0; b < 256 && byte < 0; ++b)
                    if (p.text == byte_piece(b)) byte = b;
                if (byte < 0) input_error(what + ": invalid byte piece '" + p.text + "'");
                byte_ids_[size_t(byte)] = id;
                break;
            }
            case SpmPiece::kControl: break;
        }
    }
    if (unk_id_ < 0) input_error(path_ + ": the model has no UNKNOWN piece");
    if (vocab.empty()) input_error(path_ + ": the model has no normal pieces");
    if (byte_fallback_)
        for (int b = 0; b < 256; ++b)
            if (byte_ids_[size_t(b)] < 0) input_error(path_ + ": byte_fallback is on but piece " + byte_piece(b) + " is missing");
    vocab_ = SpmPrefixIndex(std::move(vocab));
}

std::vector<int> SentencePiece::encode(std::string_view text) const {
    const std::string normalized = normalizer_.normalize(text);
    const size_t      size       = normalized.size();
    if (size == 0) return {};

    // Model::EncodeOptimized: the best path ending at each byte position. The arithmetic types are the
    // library's (a user-defined score is a double; path scores are stored as float), so ties break alike.
    struct BestPath {
        int   id        = -1;
        float score     = 0;
        int   starts_at = -1;
    };
    std::vector<BestPath> best(size + 1);
    const float           unk_score = min_score_ - kUnkPenalty;
    for (size_t start = 0; start < size;) {
        const float  score_here = best[start].score;
        const size_t char_len   = std::min(spm_one_char_len(normalized[start]), size - start);
        bool         has_char   = false;
        const auto   offer      = [&](size_t end, double candidate, int id) {
            BestPath& target = best[end];
            if (target.starts_at == -1 || candidate > target.score) {
                target.score     = float(candidate);
                target.starts_at = int(start);
                target.id        = id;
            }
        };
        vocab_.for_each_prefix(std::string_view(normalized).substr(start), [&](size_t length, int id) {
            const SpmPiece& p = pieces_[size_t(id)];
            if (p.type == SpmPiece::kUnused) return;
            const double score = p.type == SpmPiece::kUserDefined ? double(float(length) * max_score_) - 0.1 : double(p.score);
            offer(start + length, score + score_here, id);
            if (length == char_len) has_char = true;
        });
        if (!has_char) offer(start + char_len, double(unk_score + score_here), unk_id_);  // a float sum, as there
        start += char_len;
    }

    std::vector<std::pair<size_t, size_t>> path;  // (start, end) of each piece, last first
    for (size_t end = size; end > 0; end = path.back().first) {
        if (best[end].starts_at < 0) throw std::logic_error("SentencePiece::encode: no path to byte " + std::to_string(end));
        path.emplace_back(size_t(best[end].starts_at), end);
    }
    // SentencePieceProcessor::PopulateSentencePieceText: an unknown piece becomes its bytes with byte
    // fallback; without it, a run of unknown pieces is merged into one <unk>.
    std::vector<int> ids;
    bool             prev_unknown = false;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
        const int  id      = best[it->second].id;
        const bool unknown = id == unk_id_;
        if (unknown && byte_fallback_) {
            for (const char c : std::string_view(normalized).substr(it->first, it->second - it->first))
                ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        } else if (!(unknown && prev_unknown)) {
            ids.push_back(id);
        }
        prev_unknown = unknown;
    }
    return ids;
}

}  // namespace profdit::wan
