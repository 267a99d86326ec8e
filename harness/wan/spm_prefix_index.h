#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace profdit::wan {

// A set of byte strings, each with an int value, that finds every entry which is a prefix of a text
// (SentencePiece keeps its vocabulary in a double-array trie for the same query). Kept as one sorted
// vector: the entries sharing the text's first k bytes are a contiguous range, narrowed byte by byte.
class SpmPrefixIndex {
  public:
    SpmPrefixIndex() = default;
    explicit SpmPrefixIndex(std::vector<std::pair<std::string, int>> entries) : entries_(std::move(entries)) {
        std::sort(entries_.begin(), entries_.end());  // std::string orders bytes as unsigned char
    }

    // Calls fn(length, value) for each entry that is a prefix of `text`, shortest first.
    template <class Fn>
    void for_each_prefix(std::string_view text, Fn&& fn) const {
        size_t lo = 0, hi = entries_.size();
        for (size_t k = 0; k < text.size() && lo < hi; ++k) {
            if (entries_[lo].first.size() == k) ++lo;  // reported at the previous byte; sorts first in its range
            const auto c = static_cast<unsigned char>(text[k]);
            const auto byte_at = [k](const Entry& e) { return static_cast<unsigned char>(e.first[k]); };
            lo = size_t(std::partition_point(entries_.begin() + lo, entries_.begin() + hi, [&](const Entry& e) { return byte_at(e) < c; }) -
                        entries_.begin());
            hi = size_t(std::partition_point(entries_.begin() + lo, entries_.begin() + hi, [&](const Entry& e) { return byte_at(e) == c; }) -
                        entries_.begin());
            if (lo < hi && entries_[lo].first.size() == k + 1) fn(k + 1, entries_[lo].second);
        }
    }

    // The value of the entry equal to `key`, or `missing`.
    int find(std::string_view key, int missing) const {
        const auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                                         [](const Entry& e, std::string_view k) { return std::string_view(e.first) < k; });
        return it != entries_.end() && it->first == key ? it->second : missing;
    }

    bool empty() const { return entries_.empty(); }

  private:
    using Entry = std::pair<std::string, int>;
    std::vector<Entry> entries_;
};

}  // namespace profdit::wan
