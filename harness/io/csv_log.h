#pragma once

#include <string>
#include <vector>

namespace profdit::io {

// Appends one row to a CSV log that grows across runs (a training run's curve.csv and probe.csv). A missing file is
// created with the header. A file written by an older profdit, whose columns are a subset of `columns`, is first
// rewritten (atomically) under the new header: its rows keep their values, the new columns stay empty. A file with a
// column this profdit does not write is an InputError naming the file and both headers, and is left as it is.
// Cells must not contain commas or newlines.
void append_csv_row(const std::string& path, const std::vector<std::string>& columns, const std::vector<std::string>& values);

}  // namespace profdit::io
