#include "io/csv_log.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "common/format.h"

namespace profdit::io {

namespace {

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream        s(line);
    for (std::string c; std::getline(s, c, ',');) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    return cells;
}

// Rewrites `path` (whose header is `old`) under `columns`, every row's cells moved to their columns' new places.
void upgrade(const std::string& path, std::ifstream& in, const std::vector<std::string>& old, const std::vector<std::string>& columns) {
    std::vector<size_t> at;
    for (const auto& c : old) {
        const auto it = std::find(columns.begin(), columns.end(), c);
        if (it == columns.end())
            input_error(path + ": its column '" + c + "' is not one this profdit writes (file: " + join(old, ",") + "; now: " +
                        join(columns, ",") + "); move the file aside to start a new log");
        at.push_back(size_t(it - columns.begin()));
    }
    std::ostringstream out;
    out << join(columns, ",") << "\n";
    int line_no = 1;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (line.empty()) continue;
        const auto cells = split(line);
        if (cells.size() != old.size())
            input_error(path + ":" + std::to_string(line_no) + ": " + std::to_string(cells.size()) + " cells under a header of " +
                        std::to_string(old.size()) + " columns");
        std::vector<std::string> row(columns.size());
        for (size_t i = 0; i < cells.size(); ++i) row[at[i]] = cells[i];
        out << join(row, ",") << "\n";
    }
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << out.str();
        if (!f.flush()) input_error(path + ": cannot write " + tmp);
    }
    std::filesystem::rename(tmp, path);
}

}  // namespace

void append_csv_row(const std::string& path, const std::vector<std::string>& columns, const std::vector<std::string>& values) {
    if (values.size() != columns.size())
        throw std::logic_error("append_csv_row: " + std::to_string(values.size()) + " values for " + std::to_string(columns.size()) + " columns");
    if (std::filesystem::exists(path)) {
        std::ifstream in(path);
        std::string   header;
        std::getline(in, header);
        const auto old = split(header);
        if (old != columns) upgrade(path, in, old, columns);
    } else {
        std::ofstream(path) << join(columns, ",") << "\n";
    }
    std::ofstream f(path, std::ios::app);
    f << join(values, ",") << "\n";
    if (!f.flush()) input_error(path + ": cannot append a row");
}

}  // namespace profdit::io
