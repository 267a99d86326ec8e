#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace profdit::io {

// Walks one Protocol Buffers message in wire format, field by field (varint, 64-bit, length-delimited
// and 32-bit fields; the deprecated groups are refused). Enough to read a schema known in advance
// without protoc or libprotobuf: the caller switches on the field numbers it needs and ignores the rest.
// Truncated or malformed data: InputError naming `context` (the file and the message being read).
class ProtoReader {
  public:
    enum WireType { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };
    struct Field {
        uint32_t         number    = 0;
        WireType         wire_type = kVarint;
        uint64_t         varint    = 0;  // kVarint
        std::string_view bytes;          // kBytes (the payload), kFixed64 / kFixed32 (the 8 / 4 raw bytes)
    };

    ProtoReader(std::string_view data, std::string context);

    // Reads the next field into `f`; false at the end of the message.
    bool next(Field& f);

    // A kFixed32 field as a little-endian IEEE float (proto `float`); InputError for any other wire type.
    float as_float(const Field& f) const;
    // A kBytes field; InputError for any other wire type.
    std::string_view as_bytes(const Field& f) const;
    // A kVarint field (proto bool, enum, int32: the low 32 bits, two's complement); InputError otherwise.
    int64_t as_int(const Field& f) const;

  private:
    uint64_t read_varint();
    [[noreturn]] void fail(const std::string& what) const;

    std::string_view data_;
    size_t           pos_ = 0;
    std::string      context_;
};

}  // namespace profdit::io
