#include "apps/ferryd/logging.hpp"

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>

#include <spdlog/details/file_helper.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/errc.hpp"

namespace ferry::daemon {

namespace {

void append_json_string(spdlog::memory_buf_t& out, spdlog::string_view_t s) {
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out.append(std::string_view{"\\\""}); break;
      case '\\': out.append(std::string_view{"\\\\"}); break;
      case '\n': out.append(std::string_view{"\\n"}); break;
      case '\r': out.append(std::string_view{"\\r"}); break;
      case '\t': out.append(std::string_view{"\\t"}); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(std::string_view{buf});
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

/// One JSON object per line.
class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = system_clock::to_time_t(msg.time);
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[40];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    dest.append(std::string_view{"{\"time\":\""});
    dest.append(std::string_view{ts});
    dest.append(std::string_view{"\",\"level\":\""});
    auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.append(std::string_view{"\",\"logger\":"});
    append_json_string(dest, msg.logger_name);
    dest.append(std::string_view{",\"msg\":"});
    append_json_string(dest, msg.payload);
    dest.append(std::string_view{"}\n"});
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

/// The log file, appended to, which reopen() opens again by its name: after logrotate (or an
/// operator) moved it, the logs go to a new file of that name. The new file is opened before
/// the old one is let go, so a file that cannot be opened leaves the logs where they were.
class reopening_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit reopening_file_sink(const std::string& path)
    : file_(std::make_unique<spdlog::details::file_helper>()) {
    file_->open(path, false);
  }

  /// Throws spdlog_ex when the file cannot be opened.
  void reopen() {
    auto fresh = std::make_unique<spdlog::details::file_helper>();
    fresh->open(file_->filename(), false);
    std::lock_guard<std::mutex> g(mutex_);
    file_->flush();
    file_ = std::move(fresh);
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_->write(formatted);
  }

  void flush_() override { file_->flush(); }

private:
  std::unique_ptr<spdlog::details::file_helper> file_;
};

/// The log file's sink, when the logs go to a file.
std::shared_ptr<reopening_file_sink> log_file_sink;

} // namespace

caf::error reopen_log_file() {
  if (!log_file_sink)
    return caf::none;
  try {
    log_file_sink->reopen();
  } catch (const spdlog::spdlog_ex& e) {
    return make_error(errc::failed_precondition, "log_file: " + std::string{e.what()});
  }
  return caf::none;
}

caf::error setup_logging(const std::string& format, const std::string& level,
                         const std::string& file) {
  spdlog::sink_ptr sink;
  try {
    if (file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      log_file_sink = std::make_shared<reopening_file_sink>(file);
      sink = log_file_sink;
    }
  } catch (const spdlog::spdlog_ex& e) {
    return make_error(errc::failed_precondition, "log_file: " + std::string{e.what()});
  }
  if (format == "json")
    sink->set_formatter(std::make_unique<json_formatter>());
  else
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  auto lvl = spdlog::level::from_str(level);
  for (auto name : {"ferryd", "ferry"}) {
    spdlog::drop(name);
    auto l = std::make_shared<spdlog::logger>(name, sink);
    l->set_level(lvl);
    l->flush_on(spdlog::level::info);
    spdlog::register_logger(l);
  }
  return caf::none;
}

} // namespace ferry::daemon
