#pragma once

namespace profdit {

const char* build_commit();   // short git commit of the source tree, "-dirty" when modified
const char* build_version();  // project version

}  // namespace profdit
