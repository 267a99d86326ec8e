#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace profdit::cli {

// A result table in the spirit of llama-bench: markdown for people, CSV/JSON for scripts.
struct Table {
    std::vector<std::string>              columns;
    std::vector<std::vector<std::string>> rows;
};

const std::vector<std::string>& table_formats();  // md, csv, json
void check_format(const std::string& format);     // InputError "unknown --format 'x' (accepted: md, csv, json)"
void print_table(const Table& t, const std::string& format, std::ostream& os);

}  // namespace profdit::cli
