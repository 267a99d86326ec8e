#include "io/protobuf_wire.h"

#include <cstring>

#include "common/error.h"

namespace profdit::io {

ProtoReader::ProtoReader(std::string_view data, std::string context) : data_(data), context_(std::move(context)) {}

void ProtoReader::fail(const std::string& what) const {
    input_error(context_ + ": malformed protobuf at byte " + std::to_string(pos_) + " of " + std::to_string(data_.size()) +
                ": " + what);
}

uint64_t ProtoReader::read_varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (pos_ >= data_.size()) fail("varint runs past the end");
        const auto b = static_cast<unsigned char>(data_[pos_++]);
        value |= uint64_t(b & 0x7F) << shift;
        if (b < 0x80) return value;
    }
    fail("varint longer than 10 bytes");
}

bool ProtoReader::next(Field& f) {
    if (pos_ >= data_.size()) return false;
    const uint64_t key = read_varint();
    f        = Field{};
    f.number = uint32_t(key >> 3);
    if (f.number == 0) fail("field number 0");
    const auto take = [&](uint64_t n) {
        if (n > data_.size() - pos_) fail("field " + std::to_string(f.number) + " needs " + std::to_string(n) + " bytes, " +
                                          std::to_string(data_.size() - pos_) + " left");
        f.bytes = data_.substr(pos_, size_t(n));
        pos_ += size_t(n);
    };
    switch (key & 7) {
        case kVarint: f.wire_type = kVarint; f.varint = read_varint(); break;
        case kFixed64: f.wire_type = kFixed64; take(8); break;
        case kBytes: f.wire_type = kBytes; take(read_varint()); break;
        case kFixed32: f.wire_type = kFixed32; take(4); break;
        default: fail("field " + std::to_string(f.number) + " has unsupported wire type " + std::to_string(key & 7));
    }
    return true;
}

float ProtoReader::as_float(const Field& f) const {
    if (f.wire_type != kFixed32) fail("field " + std::to_string(f.number) + " is not a 32-bit float");
    uint32_t bits = 0;
    for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(f.bytes[size_t(i)]);
    float v = 0;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}

std::string_view ProtoReader::as_bytes(const Field& f) const {
    if (f.wire_type != kBytes) fail("field " + std::to_string(f.number) + " is not length-delimited");
    return f.bytes;
}

int64_t ProtoReader::as_int(const Field& f) const {
    if (f.wire_type != kVarint) fail("field " + std::to_string(f.number) + " is not a varint");
    return int64_t(int32_t(uint32_t(f.varint)));
}

}  // namespace profdit::io
