#include "wan/tokenizer.h"

#include <dlfcn.h>

#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <sentencepiece_processor.h>

#include "common/error.h"

namespace profdit::wan {

namespace {

constexpr int kPadId = 0;
constexpr int kEosId = 1;

// Decodes one UTF-8 code point at s[i]; returns its byte length (1 for an invalid byte, cp = -1).
size_t decode_utf8(const std::string& s, size_t i, int32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t     n  = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
        cp = -1;
        return 1;
    }
    cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b >> 6) != 0x2) {
            cp = -1;
            return 1;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    return n;
}

void append_utf8(std::string& out, int64_t cp) {
    if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;  // as Python's html.unescape
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// Python's str.isspace(), which is what re's \s and str.strip() use.
bool is_space(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int hex_value(char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10); }

// html.unescape for numeric references (&#65; &#x41;, ';' optional) and the common named entities
// (amp, lt, gt, quot, nbsp with or without ';', apos with it). Other named entities stay as they are.
std::string html_unescape(const std::string& s) {
    struct Named {
        const char* name;
        const char* text;
        bool        needs_semicolon;
    };
    static const Named kNamed[] = {{"amp", "&", false},  {"lt", "<", false},          {"gt", ">", false},
                                   {"quot", "\"", false}, {"nbsp", "\xC2\xA0", false}, {"apos", "'", true}};
    std::string out;
    size_t      i = 0;
    while (i < s.size()) {
        if (s[i] != '&') {
            out += s[i++];
            continue;
        }
        if (i + 1 < s.size() && s[i + 1] == '#') {
            size_t j   = i + 2;
            bool   hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
            if (hex) ++j;
            const size_t start = j;
            int64_t      cp    = 0;
            while (j < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) : std::isdigit(static_cast<unsigned char>(s[j])))) {
                if (cp <= 0x10FFFF) cp = cp * (hex ? 16 : 10) + hex_value(s[j]);
                ++j;
            }
            if (j > start) {
                if (j < s.size() && s[j] == ';') ++j;
                append_utf8(out, cp);
                i = j;
                continue;
            }
        } else {
            bool matched = false;
            for (const auto& e : kNamed) {
                const std::string name = e.name;
                if (s.compare(i + 1, name.size(), name) != 0) continue;
                const size_t after = i + 1 + name.size();
                const bool   semi  = after < s.size() && s[after] == ';';
                if (!semi && e.needs_semicolon) continue;
                out += e.text;
                i       = after + (semi ? 1 : 0);
                matched = true;
                break;
            }
            if (matched) continue;
        }
        out += s[i++];
    }
    return out;
}

// Debian's libsentencepiece bundles its own protobuf-lite and exports those symbols; loaded into the
// global scope next to LibTorch's libprotobuf, one library's calls land in the other's copy and the
// process crashes at start-up. So sentencepiece is opened privately (RTLD_LOCAL | RTLD_DEEPBIND: its
// own protobuf first, nothing exported to the process) and called through its exported symbols with
// the Itanium x86-64 ABI (a class returned by value comes back through a hidden first pointer). Only
// sizeof() is taken from the headers, so nothing here links against the library. Under DEEPBIND the
// library sees libstdc++'s own std::cerr, not the executable's initialised copy, so its logging is
// turned off (writing to it crashes).
struct SpStatus {
    void* rep = nullptr;  // util::Status is one std::unique_ptr<Rep>; null = ok
};
static_assert(sizeof(SpStatus) == sizeof(sentencepiece::util::Status), "sentencepiece::util::Status layout");

struct SpApi {
    void*       lib = nullptr;
    std::string error;
    void (*ctor)(void*)                                                                 = nullptr;
    void (*dtor)(void*)                                                                 = nullptr;
    void (*load)(SpStatus*, void*, std::string_view)                                    = nullptr;
    void (*encode)(SpStatus*, const void*, std::string_view, std::vector<int>*)         = nullptr;
    int (*piece_size)(const void*)                                                      = nullptr;
    void (*status_dtor)(SpStatus*)                                                      = nullptr;
    const char* (*status_message)(const SpStatus*)                                      = nullptr;
    void (*train)(SpStatus*, std::string_view, void*, std::string*)                     = nullptr;
};

void* open_private(const char* name, std::string& error) {
    void* h = ::dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) error = std::string("cannot open ") + name + ": " + ::dlerror();
    return h;
}

template <class Fn>
void bind(void* lib, const char* symbol, Fn& fn, std::string& error) {
    void* p = lib ? ::dlsym(lib, symbol) : nullptr;
    if (!p && error.empty()) error = std::string("sentencepiece symbol not found: ") + symbol;
    fn = reinterpret_cast<Fn>(p);
}

const SpApi& sp_api(bool with_trainer) {
    static const SpApi api = [] {
        SpApi a;
        a.lib = open_private("libsentencepiece.so.0", a.error);
        bind(a.lib, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", a.ctor, a.error);
        bind(a.lib, "_ZN13sentencepiece22SentencePieceProcessorD1Ev", a.dtor, a.error);
        bind(a.lib, "_ZN13sentencepiece22SentencePieceProcessor4LoadESt17basic_string_viewIcSt11char_traitsIcEE", a.load, a.error);
        bind(a.lib, "_ZNK13sentencepiece22SentencePieceProcessor6EncodeESt17basic_string_viewIcSt11char_traitsIcEEPSt6vectorIiSaIiEE",
             a.encode, a.error);
        bind(a.lib, "_ZNK13sentencepiece22SentencePieceProcessor12GetPieceSizeEv", a.piece_size, a.error);
        bind(a.lib, "_ZN13sentencepiece4util6StatusD1Ev", a.status_dtor, a.error);
        bind(a.lib, "_ZNK13sentencepiece4util6Status13error_messageEv", a.status_message, a.error);
        void (*set_min_log_level)(int) = nullptr;
        bind(a.lib, "_ZN13sentencepiece7logging14SetMinLogLevelEi", set_min_log_level, a.error);
        if (set_min_log_level) set_min_log_level(3);  // fatal only: with DEEPBIND the library's std::cerr is not the live one
        return a;
    }();
    if (!api.error.empty()) throw std::runtime_error("tokenizer: " + api.error);
    if (with_trainer) {
        static const std::pair<std::string, decltype(SpApi::train)> trainer = [] {
            std::string error;
            decltype(SpApi::train) fn = nullptr;
            void* lib = open_private("libsentencepiece_train.so.0", error);
            bind(lib, "_ZN13sentencepiece20SentencePieceTrainer5TrainESt17basic_string_viewIcSt11char_traitsIcEEPNS_16SentenceIteratorEPNSt7__cxx1112basic_stringIcS3_SaIcEEE",
                 fn, error);
            return std::make_pair(error, fn);
        }();
        if (!trainer.first.empty()) throw std::runtime_error("tokenizer: " + trainer.first);
        const_cast<SpApi&>(api).train = trainer.second;
    }
    return api;
}

// A util::Status returned by a sentencepiece call; destroyed through the library.
struct Status {
    SpStatus s;
    Status() = default;
    Status(const Status&) = delete;
    ~Status() { sp_api(false).status_dtor(&s); }
    bool        ok() const { return s.rep == nullptr; }
    std::string message() const { return ok() ? "" : sp_api(false).status_message(&s); }
};

}  // namespace

namespace detail {

std::string train_sentencepiece(const std::string& args) {
    const auto& api = sp_api(true);
    Status st;
    api.train(&st.s, args, nullptr, nullptr);
    return st.message();
}

}  // namespace detail

struct Tokenizer::Impl {
    std::string path;
    void*       sp = nullptr;  // a sentencepiece::SentencePieceProcessor
    Impl() {
        sp = ::operator new(sizeof(sentencepiece::SentencePieceProcessor));
        sp_api(false).ctor(sp);
    }
    Impl(const Impl&) = delete;
    ~Impl() {
        sp_api(false).dtor(sp);
        ::operator delete(sp);
    }
};

// Wan's basic_clean also runs ftfy.fix_text first (mojibake / broken-unicode repair); ftfy is a Python
// package with no C++ counterpart here, so well-formed UTF-8 prompts give the same text and broken ones
// may not.
std::string Tokenizer::clean(const std::string& text) {
    const std::string s = html_unescape(html_unescape(text));
    std::string       out;
    bool              pending_space = false;
    for (size_t i = 0; i < s.size();) {
        int32_t      cp = 0;
        const size_t n  = decode_utf8(s, i, cp);
        if (cp >= 0 && is_space(cp)) {
            pending_space = true;
        } else {
            if (pending_space && !out.empty()) out += ' ';
            pending_space = false;
            out.append(s, i, n);
        }
        i += n;
    }
    return out;
}

Tokenizer Tokenizer::load(const std::string& spiece_model_or_folder) {
    namespace fs = std::filesystem;
    std::string model = spiece_model_or_folder;
    std::error_code ec;
    if (fs::is_directory(model, ec)) {
        const auto a = fs::path(model) / "spiece.model";
        const auto b = fs::path(model) / "tokenizer" / "spiece.model";
        if (fs::is_regular_file(a, ec)) model = a.string();
        else if (fs::is_regular_file(b, ec)) model = b.string();
        else input_error(spiece_model_or_folder + ": tokenizer folder has no spiece.model (looked for " + a.string() + " and " + b.string() + ")");
    } else if (!fs::exists(model, ec)) {
        input_error(model + ": tokenizer model not found (expected umT5's spiece.model or a folder holding it)");
    }
    auto impl  = std::make_shared<Impl>();
    impl->path = model;
    Status status;
    sp_api(false).load(&status.s, impl->sp, model);
    if (!status.ok()) input_error(model + ": cannot load the SentencePiece tokenizer model: " + status.message());
    Tokenizer t;
    t.impl_ = std::move(impl);
    return t;
}

Tokenizer::Encoded Tokenizer::encode(const std::string& text, int64_t text_len) const {
    if (text_len < 1) input_error("tokenizer: text_len must be at least 1, got " + std::to_string(text_len));
    std::vector<int> pieces;
    const std::string cleaned = clean(text);
    Status status;
    sp_api(false).encode(&status.s, impl_->sp, cleaned, &pieces);
    if (!status.ok()) input_error(impl_->path + ": SentencePiece encode failed: " + status.message());
    if (int64_t(pieces.size()) > text_len - 1) pieces.resize(size_t(text_len - 1));
    pieces.push_back(kEosId);
    Encoded e;
    e.length = int64_t(pieces.size());
    e.ids    = torch::full({1, text_len}, kPadId, torch::kInt64);  // [1, text_len]
    e.mask   = torch::zeros({1, text_len}, torch::kInt64);         // [1, text_len]
    auto ids = e.ids.accessor<int64_t, 2>();
    for (int64_t i = 0; i < e.length; ++i) ids[0][i] = pieces[size_t(i)];
    e.mask.narrow(1, 0, e.length).fill_(1);
    return e;
}

const std::string& Tokenizer::path() const { return impl_->path; }

int64_t Tokenizer::vocab_size() const { return sp_api(false).piece_size(impl_->sp); }

}  // namespace profdit::wan
