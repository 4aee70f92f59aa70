// Task kinds for engine tests: `manual` parks every attempt until the test completes it, and
// records every key it was handed (re-dispatches included). Thread-safe; waits use deadlines.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "actors/executor.hpp"

namespace ferry::test {

class manual_executor : public task_executor {
public:
  explicit manual_executor(std::string name = "manual") : name_(std::move(name)) {
  }

  kind_spec spec() const override {
    return kind_spec{name_, {}, true, "Parks attempts until the test completes them."};
  }

  void execute(const task_call& call, completion done) override {
    std::lock_guard<std::mutex> guard{mtx_};
    keys_.push_back(call.key);
    parked_.push_back(parked{call.key, std::move(done)});
    cv_.notify_all();
  }

  /// Waits until an attempt with `key` is parked; false after the deadline.
  bool await(const std::string& key, std::chrono::milliseconds timeout
                                     = std::chrono::seconds{10}) {
    std::unique_lock<std::mutex> lock{mtx_};
    return cv_.wait_for(lock, timeout, [&] { return find(key) != parked_.end(); });
  }

  /// Completes the parked attempt `key`; false if there is none.
  bool complete(const std::string& key, task_result r = task_result::success()) {
    completion done;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = find(key);
      if (i == parked_.end())
        return false;
      done = std::move(i->done);
      parked_.erase(i);
    }
    done(std::move(r));
    return true;
  }

  /// Every key handed to this executor, in order.
  std::vector<std::string> keys() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return keys_;
  }

  /// Drops parked attempts without completing them (as a crash would).
  void forget_all() {
    std::lock_guard<std::mutex> guard{mtx_};
    parked_.clear();
  }

private:
  struct parked {
    std::string key;
    completion done;
  };

  std::deque<parked>::iterator find(const std::string& key) {
    for (auto i = parked_.begin(); i != parked_.end(); ++i)
      if (i->key == key)
        return i;
    return parked_.end();
  }

  std::string name_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<parked> parked_;
  std::vector<std::string> keys_;
};

/// A fresh directory, removed afterwards.
class temp_dir {
public:
  temp_dir() {
    auto tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path_ = ::mkdtemp(buf.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

} // namespace ferry::test
