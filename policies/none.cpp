#include "policies/none.h"

namespace profdit::policies {

std::unique_ptr<CachePolicy> make_none(io::Options& opts, const ModelFacts& facts) {
    opts.finish();
    return std::make_unique<NonePolicy>(facts);
}

}  // namespace profdit::policies
