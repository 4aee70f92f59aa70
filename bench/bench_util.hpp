// Helpers shared by the benchmarks: a simulated fleet, temporary journal directories, memory
// and CPU readings from /proc, submitting runs in waves, and a flat JSON object printer.
// Benchmarks print one JSON object on stdout.
#pragma once

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "actors/engine.hpp"

namespace ferry::bench {

/// The five-task noop workflow the throughput benchmarks run (text format).
constexpr const char* five_task_noop = R"(
name: "five-task-noop"
tasks { id: "hot_unplug" kind: "noop" }
tasks { id: "copy" kind: "noop" depends_on: "hot_unplug" }
tasks { id: "flip" kind: "noop" depends_on: "copy" point_of_no_return: true }
tasks { id: "hot_plug" kind: "noop" depends_on: "flip" }
tasks { id: "cleanup" kind: "noop" depends_on: "hot_plug" }
)";

/// The value in `x`, or (on an error) a message naming `program` on stderr and exit 1.
template <class T>
T must(caf::expected<T> x, const char* program) {
  if (!x) {
    std::fprintf(stderr, "%s: %s\n", program, describe(x.error()).c_str());
    std::exit(1);
  }
  return std::move(*x);
}

/// Submits `runs` runs of `def`, never more than `wave` unanswered at once (so submissions
/// themselves do not pile up), and waits for every answer. Returns how many failed.
inline size_t submit_in_waves(engine& e, const definition_ptr& def, size_t runs,
                              size_t wave = 5000) {
  std::atomic<size_t> acked{0};
  std::atomic<size_t> failed{0};
  for (size_t i = 0; i < runs; ++i) {
    e.submit_async(def, {}, [&](caf::expected<run_id> id) {
      if (!id)
        failed.fetch_add(1);
      acked.fetch_add(1);
    });
    if ((i + 1) % wave == 0)
      while (acked.load() + wave / 2 < i + 1)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  while (acked.load() < runs)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  return failed.load();
}

/// A simulated fleet (text format) of two zones, z0 and z1, of `hosts` hosts each ("h0-7",
/// "h1-7"); `vms` small VMs ("vm12") spread over zone z0's hosts, room for them in z1.
inline std::string two_zone_fleet(size_t vms, size_t hosts) {
  std::string out;
  out.reserve(vms * 80 + hosts * 200);
  out += "zones { name: \"z0\" }\nzones { name: \"z1\" }\n";
  out += "links { a: \"z0\" b: \"z1\" bandwidth_mib_s: 100000 }\n";
  out += "vm_types { name: \"small\" vcpus: 2 memory_mib: 2048 }\n";
  auto per_host = (vms + hosts - 1) / hosts;
  auto cap = std::to_string(per_host * 2 + 8);
  auto mem = std::to_string((per_host + 4) * 2048);
  for (size_t z = 0; z < 2; ++z)
    for (size_t h = 0; h < hosts; ++h) {
      auto name = "h" + std::to_string(z) + "-" + std::to_string(h);
      out += "hosts { name: \"" + name + "\" zone: \"z" + std::to_string(z)
             + "\" driver: \"sim://z" + std::to_string(z) + "/" + name
             + "\" capacity { vcpus: " + cap + " memory_mib: " + mem
             + " slots: " + std::to_string(per_host + 4) + " } }\n";
    }
  for (size_t v = 0; v < vms; ++v)
    out += "vms { name: \"vm" + std::to_string(v) + "\" type: \"small\" host: \"h0-"
           + std::to_string(v % hosts) + "\" }\n";
  return out;
}

/// A fresh directory under $TMPDIR (or /tmp), removed on destruction unless `keep`.
class temp_dir {
public:
  explicit temp_dir(const std::string& prefix, bool keep = false) : keep_(keep) {
    auto base = std::filesystem::temp_directory_path();
    std::string tmpl = (base / (prefix + "-XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path_ = ::mkdtemp(buf.data());
  }
  ~temp_dir() {
    if (!keep_ && !path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
  bool keep_;
};

/// A field of /proc/self/status in bytes (VmRSS, VmHWM).
inline uint64_t proc_status_bytes(const std::string& field) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) {
      std::istringstream is{line.substr(field.size() + 1)};
      uint64_t kb = 0;
      is >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

inline uint64_t rss_bytes() { return proc_status_bytes("VmRSS"); }
inline uint64_t peak_rss_bytes() { return proc_status_bytes("VmHWM"); }

/// CPU seconds the whole process used so far (user and system).
inline double process_cpu_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// CPU seconds the calling thread used so far.
inline double this_thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// A thread's name and the CPU seconds it used so far.
struct thread_cpu {
  std::string name;
  double s = 0;
};

/// CPU seconds of each live thread of this process, by thread id (/proc/self/task/*).
inline std::map<std::string, thread_cpu> cpu_by_thread() {
  std::map<std::string, thread_cpu> out;
  auto* dir = ::opendir("/proc/self/task");
  if (!dir)
    return out;
  auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  while (auto* e = ::readdir(dir)) {
    std::string tid = e->d_name;
    if (tid == "." || tid == "..")
      continue;
    std::ifstream comm{"/proc/self/task/" + tid + "/comm"};
    std::string c;
    std::getline(comm, c);
    std::ifstream stat{"/proc/self/task/" + tid + "/stat"};
    std::string line;
    std::getline(stat, line);
    // Fields after the command (which may hold spaces): state is field 3; utime 14, stime 15.
    auto close = line.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream is{line.substr(close + 2)};
    std::string f;
    double ut = 0, st = 0;
    for (int i = 3; i <= 15 && is >> f; ++i) {
      if (i == 14)
        ut = std::stod(f);
      if (i == 15)
        st = std::stod(f);
    }
    out[tid] = thread_cpu{c, (ut + st) / ticks};
  }
  ::closedir(dir);
  return out;
}

/// CPU seconds between `t0` and `t1` of the threads alive at `t1` whose name starts with
/// `prefix`.
inline double cpu_of(const std::map<std::string, thread_cpu>& t0,
                     const std::map<std::string, thread_cpu>& t1, const std::string& prefix) {
  double total = 0;
  for (auto& [tid, t] : t1)
    if (t.name.compare(0, prefix.size(), prefix) == 0) {
      auto i = t0.find(tid);
      total += t.s - (i == t0.end() ? 0.0 : i->second.s);
    }
  return total;
}

/// The engine's CPU seconds between two readings, by the threads it runs on
/// (docs/architecture.md, "Threads").
struct engine_cpu_split {
  /// CAF's scheduler workers (CAF names them caf.multiplexer).
  double workers = 0;
  /// The journal's thread.
  double journal = 0;
  /// RocksDB's flush and compaction threads.
  double rocksdb = 0;
};

inline engine_cpu_split split_engine_cpu(const std::map<std::string, thread_cpu>& t0,
                                         const std::map<std::string, thread_cpu>& t1) {
  return {cpu_of(t0, t1, "caf.multiplexer"), cpu_of(t0, t1, "ferry.journal"),
          cpu_of(t0, t1, "rocksdb:")};
}

/// Prints {"k": v, ...} on one line.
class json_object {
public:
  json_object& add(const std::string& k, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    fields_.emplace_back(k, buf);
    return *this;
  }
  json_object& add(const std::string& k, uint64_t v) {
    fields_.emplace_back(k, std::to_string(v));
    return *this;
  }
  json_object& add(const std::string& k, int64_t v) {
    fields_.emplace_back(k, std::to_string(v));
    return *this;
  }
  json_object& add(const std::string& k, int v) { return add(k, static_cast<int64_t>(v)); }
  json_object& add(const std::string& k, const std::string& v) {
    fields_.emplace_back(k, "\"" + v + "\"");
    return *this;
  }
  json_object& add(const std::string& k, bool v) {
    fields_.emplace_back(k, v ? "true" : "false");
    return *this;
  }
  void print() const {
    std::string out = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i > 0)
        out += ", ";
      out += "\"" + fields_[i].first + "\": " + fields_[i].second;
    }
    out += "}";
    std::printf("%s\n", out.c_str());
    std::fflush(stdout);
  }

private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// The value at quantile q of sorted samples.
template <class T>
T quantile(const std::vector<T>& sorted, double q) {
  if (sorted.empty())
    return T{};
  auto i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

} // namespace ferry::bench
