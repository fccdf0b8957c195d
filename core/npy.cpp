#include "core/npy.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <fstream>
#include <stdexcept>

namespace halo {

namespace {

NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& source) {
    auto fail = [&](const std::string& what) { throw std::runtime_error(source + ": " + what); };
    if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) fail("is not a .npy array");
    const int major = bytes[6];
    size_t header_len, start;
    if (major == 1) {
        header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8;
        start = 10;
    } else {
        if (bytes.size() < 12) fail("is truncated");
        header_len = size_t(bytes[8]) | size_t(bytes[9]) << 8 | size_t(bytes[10]) << 16 | size_t(bytes[11]) << 24;
        start = 12;
    }
    if (start + header_len > bytes.size()) fail("is truncated");
    const std::string h(reinterpret_cast<const char*>(bytes.data() + start), header_len);
    NpyArray a;
    const size_t d = h.find("'descr':");
    const size_t q1 = d == std::string::npos ? d : h.find('\'', d + 8);
    const size_t q2 = q1 == std::string::npos ? q1 : h.find('\'', q1 + 1);
    if (q2 == std::string::npos) fail("has no readable 'descr' in its header");
    a.dtype = h.substr(q1 + 1, q2 - q1 - 1);
    static const char* known[] = {"<f4", "<f8", "<i4", "<i8"};
    if (std::find(std::begin(known), std::end(known), a.dtype) == std::end(known))
        fail("has element type '" + a.dtype + "'; only <f4, <f8, <i4 and <i8 are read");
    if (h.find("'fortran_order': True") != std::string::npos) fail("is in Fortran order");
    const size_t s = h.find("'shape':");
    const size_t p1 = s == std::string::npos ? s : h.find('(', s);
    const size_t p2 = p1 == std::string::npos ? p1 : h.find(')', p1);
    if (p2 == std::string::npos) fail("has no readable 'shape' in its header");
    const std::string dims = h.substr(p1 + 1, p2 - p1 - 1);
    const size_t esize = size_t(a.dtype[2] - '0');
    const size_t data_start = start + header_len;
    const uint64_t available = (bytes.size() - data_start) / esize;
    uint64_t n = 1;
    for (size_t pos = 0; pos < dims.size();) {
        if (dims[pos] == ' ' || dims[pos] == ',') {
            ++pos;
            continue;
        }
        if (dims[pos] < '0' || dims[pos] > '9') fail("has a shape that is not a list of sizes");
        uint64_t v = 0;
        while (pos < dims.size() && dims[pos] >= '0' && dims[pos] <= '9') {
            v = v * 10 + uint64_t(dims[pos++] - '0');
            if (v > available) fail("has a shape larger than its data");
        }
        if (v != 0 && n > available / v) fail("has a shape larger than its data");
        n *= v;
        a.shape.push_back(int64_t(v));
    }
    if (n > available) fail("holds less data than its shape needs");
    a.data.assign(bytes.begin() + long(data_start), bytes.begin() + long(data_start + size_t(n) * esize));
    return a;
}

std::vector<uint8_t> read_all(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path.string());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

std::vector<float> NpyArray::as_floats() const {
    std::vector<float> out;
    const size_t es = size_t(std::stoi(dtype.substr(2)));
    const size_t n = data.size() / es;
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const uint8_t* p = data.data() + i * es;
        if (dtype == "<f4") { float v; std::memcpy(&v, p, 4); out[i] = v; }
        else if (dtype == "<f8") { double v; std::memcpy(&v, p, 8); out[i] = float(v); }
        else if (dtype == "<i4") { int32_t v; std::memcpy(&v, p, 4); out[i] = float(v); }
        else if (dtype == "<i8") { int64_t v; std::memcpy(&v, p, 8); out[i] = float(v); }
        else throw std::runtime_error("npy dtype " + dtype + " is not supported");
    }
    return out;
}

NpyArray read_npy(const std::filesystem::path& path) { return parse_npy(read_all(path), path.string()); }

NpyArray read_npz_member(const std::filesystem::path& path, const std::string& member) {
    const std::vector<uint8_t> z = read_all(path);
    const std::string want = member + ".npy";
    size_t pos = 0;
    auto u16 = [&](size_t at) { return uint32_t(z[at]) | uint32_t(z[at + 1]) << 8; };
    auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
    while (pos + 30 <= z.size() && u32(pos) == 0x04034b50) {  // local file headers
        const uint32_t method = u16(pos + 8), flags = u16(pos + 6), csize = u32(pos + 18), nlen = u16(pos + 26),
                       xlen = u16(pos + 28);
        const size_t data = pos + 30 + nlen + xlen;
        if (data > z.size() || csize > z.size() - data || (flags & 8) || csize == 0xffffffffu)
            throw std::runtime_error(path.string() + " is truncated or uses zip features this reader lacks "
                                     "(data descriptors, zip64)");
        const std::string name(reinterpret_cast<const char*>(z.data() + pos + 30), nlen);
        if (name == want) {
            if (method != 0) throw std::runtime_error(path.string() + ": member " + want + " is compressed");
            return parse_npy(std::vector<uint8_t>(z.begin() + long(data), z.begin() + long(data + csize)),
                             path.string() + ":" + want);
        }
        pos = data + csize;
    }
    throw std::runtime_error(path.string() + " has no member " + want);
}

void write_npy_f32(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape) {
    std::string dims;
    int64_t n = 1;
    for (int64_t d : shape) {
        dims += std::to_string(d) + ",";
        n *= d;
    }
    if (shape.size() > 1) dims.pop_back();
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path.string());
    const uint16_t len = uint16_t(header.size());
    f.write("\x93NUMPY\x01\x00", 8);
    f.put(char(len & 0xff));
    f.put(char(len >> 8));
    f.write(header.data(), std::streamsize(header.size()));
    f.write(reinterpret_cast<const char*>(data), std::streamsize(static_cast<size_t>(n) * 4));
    if (!f) throw std::runtime_error("cannot write " + path.string() + " (disk full?)");
}

}  // namespace halo
