#include "actors/builtin_kinds.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/thread_name.hpp"

namespace ferry {

namespace {

const value* param(const task_call& call, const char* name) {
  return find_param(call.parameters(), name);
}

std::vector<kind_spec> specs() {
  return {
    kind_spec{"noop", {}, false, "Succeeds at once."},
    kind_spec{"sleep",
        {within({"ms", param_type::integer, true, "How long, in milliseconds."}, 0,
                exact_integer_limit)},
        false,
        "Succeeds after a delay."},
    kind_spec{"fail",
        {within({"attempts", param_type::integer, false,
                 "Attempts that fail before one succeeds. Default: 1."},
                0, uint32_limit),
         {"forever", param_type::boolean, false, "Every attempt fails."},
         {"message", param_type::string, false, "The error message."},
         {"code", param_type::string, false,
          "The error code (an errc name). Default: unavailable."},
         {"retryable", param_type::boolean, false,
          "Whether a retry may help. Default: true."}},
        false,
        "Fails a number of attempts, or forever."},
    kind_spec{"effect",
        {{"log", param_type::string, true,
          "File of applied keys (created when missing)."}},
        false,
        "Appends the attempt's key to a log unless it is there already."},
  };
}

kind_spec builtin_spec(const std::string& name) {
  for (auto& k : specs())
    if (k.name == name)
      return k;
  return {};
}

class noop_executor final : public task_executor {
public:
  kind_spec spec() const override {
    return builtin_spec("noop");
  }
  void execute(const task_call&, completion done) override {
    done(task_result::success());
  }
};

class sleep_executor final : public task_executor {
public:
  explicit sleep_executor(timer_service& timers) : timers_(timers) {
  }
  kind_spec spec() const override {
    return builtin_spec("sleep");
  }
  void execute(const task_call& call, completion done) override {
    auto ms = param(call, "ms");
    auto delay = ms ? static_cast<time_ms>(ms->n) : 0;
    timers_.arm(wall_now_ms() + delay,
                [done = std::move(done)](uint64_t) { done(task_result::success()); });
  }

private:
  timer_service& timers_;
};

class fail_executor final : public task_executor {
public:
  kind_spec spec() const override {
    return builtin_spec("fail");
  }
  void execute(const task_call& call, completion done) override {
    auto attempts = param(call, "attempts");
    auto forever = param(call, "forever");
    uint32_t failing = attempts ? static_cast<uint32_t>(attempts->n) : 1;
    if ((forever && forever->b) || call.attempt <= failing) {
      auto msg = param(call, "message");
      auto code = param(call, "code");
      auto retryable = param(call, "retryable");
      auto c = code ? errc_from_string(code->s) : errc::unavailable;
      if (c == errc::ok)
        c = errc::unknown;
      done(task_result::failure(c,
                                msg ? msg->s
                                    : "injected failure of attempt "
                                        + std::to_string(call.attempt),
                                retryable ? retryable->b : true));
      return;
    }
    done(task_result::success());
  }
};

/// One append-only key log per path, shared by every effect task naming it.
class effect_log {
public:
  explicit effect_log(std::string path) : path_(std::move(path)) {
    std::ifstream in{path_};
    std::string line;
    while (std::getline(in, line))
      if (!line.empty())
        keys_.insert(line);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  ~effect_log() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  /// Applies the effect of `key` once. Returns an empty string on success.
  std::string apply(const std::string& key, bool& applied) {
    applied = false;
    if (fd_ < 0)
      return "cannot open effect log \"" + path_ + "\"";
    if (keys_.count(key) != 0)
      return {};
    auto line = key + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      return "write to effect log \"" + path_ + "\" failed";
    if (::fdatasync(fd_) != 0)
      return "fdatasync of effect log \"" + path_ + "\" failed";
    keys_.insert(key);
    applied = true;
    return {};
  }

private:
  std::string path_;
  int fd_ = -1;
  std::unordered_set<std::string> keys_;
};

class effect_executor final : public task_executor {
public:
  effect_executor() : worker_([this] { loop(); }) {
    name_thread(worker_, "ferry.effect");
  }
  ~effect_executor() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_one();
    worker_.join();
  }
  kind_spec spec() const override {
    return builtin_spec("effect");
  }
  void execute(const task_call& call, completion done) override {
    auto log = param(call, "log");
    {
      std::lock_guard<std::mutex> guard{mtx_};
      queue_.push_back(job{log ? log->s : std::string{}, call.key, std::move(done)});
    }
    cv_.notify_one();
  }

private:
  struct job {
    std::string path;
    std::string key;
    completion done;
  };

  void loop() {
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      auto j = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      auto& log = logs_[j.path];
      if (!log)
        log = std::make_unique<effect_log>(j.path);
      bool applied = false;
      auto err = log->apply(j.key, applied);
      if (err.empty())
        j.done(task_result::success(applied ? "applied " + j.key : "already applied " + j.key));
      else
        j.done(task_result::failure(errc::unavailable, err));
      lock.lock();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool stopping_ = false;
  // Touched only by the worker thread.
  std::unordered_map<std::string, std::unique_ptr<effect_log>> logs_;
  std::thread worker_;
};

} // namespace

std::vector<kind_spec> builtin_kind_specs() {
  return specs();
}

void add_builtin_kinds(executor_registry& reg, timer_service& timers) {
  reg.add(std::make_shared<noop_executor>());
  reg.add(std::make_shared<sleep_executor>(timers));
  reg.add(std::make_shared<fail_executor>());
  reg.add(std::make_shared<effect_executor>());
}

} // namespace ferry
