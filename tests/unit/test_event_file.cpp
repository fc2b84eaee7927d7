// io::EventWriter and readEventFile: TFRecord framing with CRC-32C, scalar events that read back
// with their tags, steps and values, truncation of an interrupted run's later records on resume,
// and damage found at the record where it is. TensorBoard's own reader checks the same files in
// integration_train_run.
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "metasemi/core/Error.h"
#include "metasemi/io/EventFile.h"
#include "metasemi/train/ProgressLog.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using namespace metasemi;

namespace {

std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void writeAll(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// Every (step, tag) of the folder's files, in file and record order.
std::vector<std::pair<std::int64_t, std::string>> stepsAndTags(const fs::path& dir) {
  std::vector<std::pair<std::int64_t, std::string>> out;
  for (const auto& f : io::eventFilesIn(dir)) {
    for (const auto& e : io::readEventFile(f).events) {
      for (const auto& [tag, v] : e.scalars) out.emplace_back(e.step, tag);
    }
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(crc32c_matches_the_castagnoli_check_value) {
  // The standard check value of CRC-32C over "123456789" (RFC 3720, appendix B.4).
  BOOST_TEST(io::crc32c("123456789", 9) == 0xE3069283u);
  BOOST_TEST(io::crc32c("", 0) == 0u);
  // 32 bytes of zeros (RFC 3720 B.4 test pattern).
  const std::string zeros(32, '\0');
  BOOST_TEST(io::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
}

BOOST_AUTO_TEST_CASE(scalars_read_back_with_tags_steps_and_values) {
  const fs::path dir = test::freshDir("event_file_round_trip");
  fs::path file;
  {
    io::EventWriter w(dir, 0);
    file = w.path();
    BOOST_TEST(file.filename().string().rfind("events.out.tfevents.", 0) == 0u);
    w.write(100, {{"train/lr", 0.1}, {"train/label-loss", 2.25}});
    // Flushed after each record: the file holds it before the writer closes.
    BOOST_TEST(io::readEventFile(file).events.size() == 2u);
    w.write(200, {{"test/accuracy", 87.5}, {"train/nan", std::nan("")}});
    w.write(1LL << 40, {{"big/step", -3.0}});
  }
  const auto c = io::readEventFile(file);
  BOOST_TEST(c.damage.empty());
  BOOST_TEST(c.validBytes == fs::file_size(file));
  BOOST_REQUIRE(c.events.size() == 4u);
  BOOST_TEST(c.events[0].fileVersion == "brain.Event:2");
  BOOST_TEST(c.events[0].scalars.empty());
  BOOST_TEST(c.events[0].wallTime > 1.5e9);
  BOOST_TEST(c.events[1].step == 100);
  BOOST_REQUIRE(c.events[1].scalars.size() == 2u);
  BOOST_TEST(c.events[1].scalars[0].first == "train/lr");
  BOOST_TEST(c.events[1].scalars[0].second == static_cast<double>(0.1f));
  BOOST_TEST(c.events[1].scalars[1].second == 2.25);
  BOOST_TEST(c.events[2].scalars[0].second == 87.5);
  BOOST_TEST(std::isnan(c.events[2].scalars[1].second));
  BOOST_TEST(c.events[3].step == (1LL << 40));
  BOOST_TEST(c.events[3].scalars[0].second == -3.0);
  BOOST_TEST(c.events[3].wallTime >= c.events[1].wallTime);
}

BOOST_AUTO_TEST_CASE(resume_drops_later_steps_and_a_damaged_tail) {
  const fs::path dir = test::freshDir("event_file_resume");
  fs::path first;
  {
    io::EventWriter w(dir, 0);
    first = w.path();
    for (int step : {100, 200, 300, 400}) w.write(step, {{"train/lr", step * 1e-3}});
  }
  // A SIGKILL in the middle of a record: half of a fifth one.
  const std::string whole = readAll(first);
  {
    fs::create_directories(dir / "probe");
    io::EventWriter probe(dir / "probe", 0);
    probe.write(500, {{"train/lr", 0.5}});
    const std::string extra = readAll(probe.path());
    writeAll(first, whole + extra.substr(extra.size() / 2, extra.size() / 4));
  }
  fs::remove_all(dir / "probe");
  const auto damaged = io::readEventFile(first, true);
  BOOST_TEST(!damaged.damage.empty());
  BOOST_TEST(damaged.validBytes == whole.size());
  BOOST_CHECK_THROW(io::readEventFile(first), core::IoError);

  // The checkpoint was at step 200: the run resumes there.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a later file name
  {
    io::EventWriter w(dir, 200);
    BOOST_TEST(w.path() != first);
    w.write(300, {{"train/lr", 0.3}});
    w.write(400, {{"train/lr", 0.4}});
  }
  const auto files = io::eventFilesIn(dir);
  BOOST_REQUIRE(files.size() == 2u);
  BOOST_TEST(files[0] == first);
  const auto got = stepsAndTags(dir);
  const std::vector<std::pair<std::int64_t, std::string>> want = {
      {100, "train/lr"}, {200, "train/lr"}, {300, "train/lr"}, {400, "train/lr"}};
  BOOST_TEST(got == want);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(dir)) {
    BOOST_TEST(e.path().filename().string().find(".tmp") == std::string::npos, e.path());
  }
  // Resuming at the start leaves no scalar from before: files without any are removed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  { io::EventWriter w(dir, 0); }
  BOOST_TEST(stepsAndTags(dir).empty());
}

BOOST_AUTO_TEST_CASE(damage_is_named_with_its_offset) {
  const fs::path dir = test::freshDir("event_file_damage");
  fs::path file;
  {
    io::EventWriter w(dir, 0);
    file = w.path();
    w.write(1, {{"a", 1.0}});
    w.write(2, {{"b", 2.0}});
  }
  const std::string good = readAll(file);
  const auto c = io::readEventFile(file);
  BOOST_REQUIRE(c.events.size() == 3u);

  // One flipped byte inside the second record's data: its data CRC no longer matches.
  std::string flipped = good;
  const std::size_t firstRecord = 16 + static_cast<unsigned char>(good[0]);
  flipped[firstRecord + 14] ^= 0x20;
  writeAll(file, flipped);
  const auto d = io::readEventFile(file, true);
  BOOST_TEST(d.events.size() == 1u);
  BOOST_TEST(d.validBytes == firstRecord);
  BOOST_TEST(d.damage.find("CRC") != std::string::npos, d.damage);
  const std::string msg = test::errorOf([&] { io::readEventFile(file); });
  BOOST_TEST(msg.find(file.string()) != std::string::npos, msg);
  BOOST_TEST(msg.find(std::to_string(firstRecord)) != std::string::npos, msg);

  // A length that claims more than the file holds (with a valid length CRC) reads nothing.
  std::string huge = good.substr(0, firstRecord);
  {
    fs::create_directories(dir / "probe");
    io::EventWriter probe(dir / "probe", 0);
    std::string rec = readAll(probe.path());
    // Claim 2^40 bytes: rewrite the length and recompute its masked CRC.
    const std::uint64_t n = 1ULL << 40;
    std::memcpy(rec.data(), &n, 8);
    const std::uint32_t crc = io::crc32c(rec.data(), 8);
    const std::uint32_t masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    std::memcpy(rec.data() + 8, &masked, 4);
    huge += rec;
  }
  writeAll(file, huge);
  const auto h = io::readEventFile(file, true);
  BOOST_TEST(h.events.size() == 1u);
  BOOST_TEST(h.damage.find("does not hold") != std::string::npos, h.damage);

  // Not an event file at all.
  writeAll(file, "hello, this is not a TFRecord file at all");
  BOOST_TEST(!io::readEventFile(file, true).damage.empty());
  BOOST_TEST(io::readEventFile(file, true).events.empty());
}

BOOST_AUTO_TEST_CASE(metrics_rows_map_to_the_reference_tags) {
  const nlohmann::json train = {
      {"kind", "train"},      {"step", 200},       {"lr", 0.1},
      {"weight", 1.5},        {"label_loss", 0.5}, {"unlabel_loss", 0.25},
      {"interp_loss", 0.125}, {"label_acc", 90.0}, {"unlabel_acc", nullptr},
      {"data_time", 0.01},    {"batch_time", 0.1}, {"data_wait_fraction", 0.1}};
  std::set<std::string> tags;
  for (const auto& [tag, v] : train::scalarsOf(train)) tags.insert(tag);
  const std::set<std::string> want = {
      "train/label-acc",   "train/label-loss", "train/unlabel-loss",
      "train/interp-loss", "train/lr",         "train/consistency-weight",
      "train/data-wait",   "train/data-time",  "train/step-time"};
  BOOST_TEST(tags == want);
  const auto eval = train::scalarsOf(
      {{"kind", "eval"}, {"step", 200}, {"top1_error", 12.5}, {"top5_error", nullptr}});
  BOOST_REQUIRE(eval.size() == 1u);
  BOOST_TEST(eval[0].first == "test/accuracy");
  BOOST_TEST(eval[0].second == 87.5);
}
