#include "core/npy.h"

#include <cstring>
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
    if (d == std::string::npos) fail("has no descr");
    const size_t q1 = h.find('\'', d + 8), q2 = h.find('\'', q1 + 1);
    a.dtype = h.substr(q1 + 1, q2 - q1 - 1);
    if (h.find("'fortran_order': True") != std::string::npos) fail("is in Fortran order");
    const size_t s = h.find("'shape':"), p1 = h.find('(', s), p2 = h.find(')', p1);
    std::string dims = h.substr(p1 + 1, p2 - p1 - 1);
    size_t pos = 0;
    while (pos < dims.size()) {
        while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
        if (pos >= dims.size()) break;
        a.shape.push_back(std::stoll(dims.substr(pos)));
        while (pos < dims.size() && dims[pos] != ',') ++pos;
    }
    int64_t n = 1;
    for (int64_t v : a.shape) n *= v;
    const size_t esize = size_t(std::stoi(a.dtype.substr(2)));
    const size_t data_start = start + header_len;
    if (data_start + size_t(n) * esize > bytes.size()) fail("holds less data than its shape needs");
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
        const uint32_t method = u16(pos + 8), csize = u32(pos + 18), nlen = u16(pos + 26), xlen = u16(pos + 28);
        const std::string name(reinterpret_cast<const char*>(z.data() + pos + 30), nlen);
        const size_t data = pos + 30 + nlen + xlen;
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
