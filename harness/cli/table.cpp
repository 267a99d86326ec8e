#include "cli/table.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace profdit::cli {

namespace {

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace

const std::vector<std::string>& table_formats() {
    static const std::vector<std::string> f = {"md", "csv", "json"};
    return f;
}

void check_format(const std::string& format) {
    const auto& f = table_formats();
    if (std::find(f.begin(), f.end(), format) == f.end()) input_error("unknown --format '" + format + "' (accepted: md, csv, json)");
}

void print_table(const Table& t, const std::string& format, std::ostream& os) {
    if (format == "csv") {
        for (size_t i = 0; i < t.columns.size(); ++i) os << (i ? "," : "") << csv_field(t.columns[i]);
        os << "\n";
        for (const auto& r : t.rows) {
            for (size_t i = 0; i < r.size(); ++i) os << (i ? "," : "") << csv_field(r[i]);
            os << "\n";
        }
    } else if (format == "json") {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : t.rows) {
            nlohmann::json o = nlohmann::json::object();
            for (size_t i = 0; i < r.size() && i < t.columns.size(); ++i) o[t.columns[i]] = r[i];
            arr.push_back(o);
        }
        os << arr.dump(1) << "\n";
    } else if (format == "md") {
        std::vector<size_t> w(t.columns.size());
        for (size_t i = 0; i < w.size(); ++i) {
            w[i] = t.columns[i].size();
            for (const auto& r : t.rows) w[i] = std::max(w[i], r[i].size());
        }
        auto line = [&](const std::vector<std::string>& cells) {
            os << "|";
            for (size_t i = 0; i < w.size(); ++i) os << " " << cells[i] << std::string(w[i] - cells[i].size(), ' ') << " |";
            os << "\n";
        };
        line(t.columns);
        os << "|";
        for (size_t i = 0; i < w.size(); ++i) os << std::string(w[i] + 2, '-') << "|";
        os << "\n";
        for (const auto& r : t.rows) line(r);
    } else {
        input_error("unknown output format '" + format + "' (accepted: md, csv, json)");
    }
}

}  // namespace profdit::cli
