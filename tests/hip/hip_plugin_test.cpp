// The HIP plugin's device, memory and execution, on its emulated build (libhalo_hipemu.so: the same sources as
// libhalo_hip.so, the HIP runtime answered by the host emulator), and the amdgpu sysfs reader on a tree of files
// laid out as the driver lays them out.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <unistd.h>
#include <vector>

#include "plugins/hip/device/device.h"
#include "tests/support/plugins.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;

int placement(const ops::DeviceInfo& d, const std::string& name) {
    for (size_t i = 0; i < d.placements.size(); ++i)
        if (d.placements[i].name == name) return int(i);
    return -1;
}

TEST(HipPlugin, PlacementsAndWhatTheDeviceReports) {
    auto plugin = load_plugin("hipemu");
    const ops::DeviceInfo& d = plugin->backend().device();
    ASSERT_EQ(placement(d, "device"), 0);
    ASSERT_EQ(placement(d, "pinned"), 1);
    ASSERT_EQ(placement(d, "managed"), 2);
    EXPECT_FALSE(d.placements[0].host_visible);
    EXPECT_TRUE(d.placements[1].host_visible);
    EXPECT_TRUE(d.placements[1].imports_host);
    EXPECT_TRUE(d.placements[2].host_visible);
    EXPECT_FALSE(d.placements[2].imports_host);
    EXPECT_GT(d.placements[0].capacity_bytes, 0u);
    for (const std::string& u : d.default_placement) EXPECT_EQ(u, "device");
    bool runtime_note = false;
    for (const std::string& n : d.notes) runtime_note = runtime_note || n.find("hipMemGetInfo: ") != std::string::npos;
    EXPECT_TRUE(runtime_note) << "engine backends should show what hipMemGetInfo says";
}

TEST(HipPlugin, BuffersInEveryPlacementHoldWhatIsWrittenAndCopied) {
    auto plugin = load_plugin("hipemu");
    ops::Backend& b = plugin->backend();
    std::vector<float> data(1000);
    std::iota(data.begin(), data.end(), 0.5f);
    std::vector<ops::Buffer*> bufs;
    for (int p = 0; p < 3; ++p) {
        ops::Buffer* buf = b.allocate(ops::MemoryUse::state, p, 4000);
        ASSERT_NE(buf, nullptr);
        EXPECT_EQ(buf->host == nullptr, p == 0) << "placement " << p;
        std::vector<float> back(1000, -1.0f);
        b.read(buf, 0, back.data(), 4000);
        for (float v : back) ASSERT_EQ(v, 0.0f) << "a new buffer reads as zero (placement " << p << ")";
        b.write(buf, 0, data.data(), 4000);
        bufs.push_back(buf);
    }
    b.zero(bufs[1], 400, 400);                      // floats 100..199
    b.copy(bufs[2], 0, bufs[0], 2000, 2000);         // floats 500..999 of device to the front of managed
    b.begin_step();
    b.copy(bufs[0], 0, bufs[1], 0, 4000);            // ordered with the step's other work
    b.end_step();
    std::vector<float> dev(1000), managed(1000);
    b.read(bufs[0], 0, dev.data(), 4000);
    b.read(bufs[2], 0, managed.data(), 4000);
    for (int i = 0; i < 1000; ++i) {
        EXPECT_EQ(dev[size_t(i)], i >= 100 && i < 200 ? 0.0f : data[size_t(i)]) << i;
        EXPECT_EQ(managed[size_t(i)], i < 500 ? data[size_t(i + 500)] : data[size_t(i)]) << i;
    }
    EXPECT_EQ(static_cast<const float*>(bufs[2]->host)[0], data[500]) << "managed memory is read in place";
    EXPECT_THROW(b.read(bufs[0], 3999, dev.data(), 2), ops::Error);
    EXPECT_THROW(b.allocate(ops::MemoryUse::state, 3, 16), ops::Error);
    for (ops::Buffer* buf : bufs) b.release(buf);
}

TEST(HipPlugin, PinnedPlacementImportsHostMemoryInPlace) {
    auto plugin = load_plugin("hipemu");
    ops::Backend& b = plugin->backend();
    std::vector<float> file(256, 3.0f);  // stands for an mmap'd weight file
    ops::Buffer* in_place = b.import_host(ops::MemoryUse::weights, 1, file.data(), 1024);
    ASSERT_NE(in_place, nullptr);
    EXPECT_EQ(in_place->host, file.data());
    float v = 0;
    b.read(in_place, 4, &v, 4);
    EXPECT_EQ(v, 3.0f);
    b.release(in_place);
    EXPECT_EQ(b.import_host(ops::MemoryUse::weights, 0, file.data(), 1024), nullptr) << "device memory copies";
    EXPECT_EQ(b.import_host(ops::MemoryUse::weights, 2, file.data(), 1024), nullptr) << "managed memory copies";
}

TEST(HipPlugin, OpErrorsNameTheOpAndThePlugin) {
    auto plugin = load_plugin("hipemu");
    ops::Backend& b = plugin->backend();
    ops::Buffer* buf = b.allocate(ops::MemoryUse::scratch, 0, 1024);
    ops::LinearParams p;
    p.x = ops::make_tensor(buf, 0, ops::DType::f32, {2, 8});
    p.weight = ops::make_tensor(buf, 0, ops::DType::i32, {4, 8});
    p.y = ops::make_tensor(buf, 512, ops::DType::f32, {2, 4});
    try {
        b.linear(p);
        ADD_FAILURE() << "an I32 weight was accepted";
    } catch (const ops::Unsupported& e) {
        EXPECT_EQ(std::string(e.what()).rfind("linear is not supported by the hip plugin: a weight of dtype I32", 0), 0u)
            << e.what();
    }
    b.release(buf);
}

// A /sys/class/drm laid out as amdgpu lays it out: cardN/device links to the PCI device's folder.
struct FakeDrm {
    fs::path root = fs::temp_directory_path() / ("halo_drm_" + std::to_string(::getpid()));
    FakeDrm() {
        fs::remove_all(root);
        card("card0", "0000:03:00.0", 8ull << 30, 1ull << 30, 16ull << 30, 2ull << 30);
        card("card1", "0000:c1:00.0", 96ull << 30, 5ull << 30, 15ull << 30, 1ull << 20);
        fs::create_directories(root / "class" / "renderD128");
    }
    ~FakeDrm() { fs::remove_all(root); }
    void card(const std::string& name, const std::string& slot, uint64_t vram, uint64_t vram_used, uint64_t gtt,
              uint64_t gtt_used) {
        const fs::path dev = root / "devices" / slot;
        fs::create_directories(dev);
        std::ofstream(dev / "mem_info_vram_total") << vram << "\n";
        std::ofstream(dev / "mem_info_vram_used") << vram_used << "\n";
        std::ofstream(dev / "mem_info_gtt_total") << gtt << "\n";
        std::ofstream(dev / "mem_info_gtt_used") << gtt_used << "\n";
        fs::create_directories(root / "class" / name);
        fs::create_directory_symlink(fs::path("../../devices") / slot, root / "class" / name / "device");
    }
};

TEST(HipSysfs, MemoryOfTheCardAtTheDevicesPciAddress) {
    FakeDrm drm;
    const hip::SysfsMemory m = hip::read_sysfs_memory(0, 0xc1, 0, (drm.root / "class").string());
    EXPECT_NE(m.card.find("card1"), std::string::npos) << m.card;
    EXPECT_EQ(m.vram_total, 96ull << 30);
    EXPECT_EQ(m.vram_used, 5ull << 30);
    EXPECT_EQ(m.gtt_total, 15ull << 30);
    EXPECT_EQ(m.gtt_used, 1ull << 20);
    const hip::SysfsMemory other = hip::read_sysfs_memory(0, 3, 0, (drm.root / "class").string());
    EXPECT_EQ(other.vram_total, 8ull << 30);
    // Two cards and an address that is neither: no guess.
    EXPECT_TRUE(hip::read_sysfs_memory(0, 0x44, 0, (drm.root / "class").string()).card.empty());
    EXPECT_TRUE(hip::read_sysfs_memory(0, 0xc1, 0, (drm.root / "nowhere").string()).card.empty());
}

}  // namespace
}  // namespace halo::test
