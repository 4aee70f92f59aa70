#include "actors/engine.hpp"
#include "actors/fleet_kinds.hpp"
#include "actors/migration_kinds.hpp"
#include "actors/vm_kinds.hpp"
#include "actors/fleet_runtime.hpp"
#include "actors/template_registry.hpp"

#include <condition_variable>
#include <filesystem>
#include <future>
#include <thread>
#include <mutex>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/builtin_kinds.hpp"
#include "actors/commit_window.hpp"
#include "actors/engine_actor.hpp"
#include "actors/scheduler.hpp"
#include "actors/journal.hpp"
#include "actors/log.hpp"
#include "actors/migration.hpp"
#include "actors/timer_service.hpp"
#include "common/thread_name.hpp"
#include "common/utf8.hpp"

namespace ferry {

namespace {

/// CAF's own errors, translated once into Ferry's codes.
caf::error translate(caf::error err) {
  if (!err || err.category() == errc_category::value)
    return err;
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return make_error(errc::deadline_exceeded, "the engine did not answer in time");
      case caf::sec::request_receiver_down:
        return make_error(errc::unavailable, "the engine is closed");
      default:
        break;
    }
  }
  return make_error(errc::internal, caf::to_string(err));
}

class ferry_config : public caf::actor_system_config {
public:
  ferry_config(size_t threads, const std::string& policy) {
    set("scheduler.max-threads", threads);
    set("scheduler.policy", caf::atom_from_string(policy));
    set("logger.verbosity", caf::atom("quiet"));
    add_error_category(errc_category::value,
                       [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                         std::string msg = to_string(static_cast<errc>(code));
                         if (ctx.size() == 1 && ctx.match_element<std::string>(0))
                           msg += ": " + ctx.get_as<std::string>(0);
                         return msg;
                       });
  }
};

} // namespace

struct engine::impl {
  engine_options opts;
  engine_metrics metrics;
  std::unique_ptr<timer_service> timers;
  std::unique_ptr<executor_registry> registry;
  std::unique_ptr<commit_window> window;
  std::shared_ptr<store> st;
  std::unique_ptr<ferry_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<migration_env> env;
  /// Shut by close() before anything is torn down (send_gate.hpp).
  send_gate_ptr gate = std::make_shared<send_gate>();
  journal_actor journal;
  engine_actor front;
  scheduler_actor scheduler;
  std::unique_ptr<fleet_runtime> fleet;
  template_registry templates;
  uint64_t recovered = 0;
  /// Checkpoints that could not be decoded on open (logged, skipped).
  uint64_t unreadable = 0;
  std::mutex mtx;
  bool closed = false;
  uint64_t next_watch = 0;
  std::unordered_map<uint64_t, watcher_actor> watchers;
  /// Retention's thread and how to stop it.
  std::thread retention;
  std::condition_variable retention_cv;
  bool retention_stop = false;

  template <class R, class... Ts>
  caf::expected<R> call(caf::duration timeout, Ts&&... xs) {
    caf::expected<R> result = make_error(errc::unavailable, "the engine is closed");
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (closed)
        return result;
    }
    caf::scoped_actor self{*sys};
    self->request(front, timeout, std::forward<Ts>(xs)...)
      .receive([&](R& r) { result = std::move(r); },
               [&](caf::error& e) { result = translate(std::move(e)); });
    return result;
  }

  /// Keeps (or, with an empty encoding, removes) a template in the journal.
  caf::error write_template(const std::string& name, const std::string& encoded) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (closed)
        return make_error(errc::unavailable, "the engine is closed");
    }
    caf::scoped_actor self{*sys};
    caf::error result;
    self->request(journal, caf::duration{opts.call_timeout}, template_atom::value, name, encoded)
      .receive([](bool) {}, [&](caf::error& e) { result = translate(std::move(e)); });
    return result;
  }

  template <class R, class... Ts>
  caf::expected<R> call(Ts&&... xs) {
    return call<R>(caf::duration{opts.call_timeout}, std::forward<Ts>(xs)...);
  }

  /// Reads every run of the journal, resumes those not at rest (unless told not to) and
  /// registers them all with the engine actor. Runs on the caller's thread, so the
  /// scheduler's threads are free for the resumed runs from the first one on.
  caf::expected<uint64_t> recover() {
    std::unordered_map<std::string, definition_ptr> defs;
    auto lookup = [&](const std::string& digest) -> caf::expected<definition_ptr> {
      if (auto i = defs.find(digest); i != defs.end())
        return i->second;
      auto bytes = st->definition(digest);
      if (!bytes)
        return bytes.error();
      auto def = decode_definition(*bytes);
      if (def)
        defs.emplace(digest, *def);
      return def;
    };
    caf::scoped_actor self{*sys};
    std::vector<recovered_run> chunk;
    uint64_t resumed = 0;
    auto flush_chunk = [&] {
      if (chunk.size() >= 4096) {
        self->send(front, recover_atom::value, std::move(chunk));
        chunk.clear();
      }
      return true;
    };
    auto err = st->for_each_checkpoint([&](std::string_view key, std::string_view bytes) {
      recovered_run r;
      // A run that will not resume is registered from its checkpoint's summary alone.
      auto sum = summarize_checkpoint(bytes);
      if (sum
          && (!opts.recover || is_resting(sum->status) || sum->status == run_status::pending)) {
        r.summary = std::move(*sum);
        chunk.push_back(std::move(r));
        return flush_chunk();
      }
      auto state = decode_checkpoint(bytes, lookup);
      if (!state) {
        // One unreadable checkpoint must not keep every other run from resuming.
        ++unreadable;
        log().error("journal: run {} cannot be resumed: {}", std::string{key},
                    describe(state.error()));
        return true;
      }
      r.summary = summarize(*state);
      if (opts.recover && !is_resting(state->status)
          && state->status != run_status::pending) {
        r.actor = caf::actor_cast<caf::strong_actor_ptr>(
          spawn_recovered_run(*sys, env, std::move(*state)));
        ++resumed;
      }
      chunk.push_back(std::move(r));
      return flush_chunk();
    });
    if (err)
      return err;
    // Same sender as the chunks: answered once every chunk is registered.
    caf::expected<uint64_t> result = resumed;
    self->request(front, caf::infinite, recover_atom::value, std::move(chunk))
      .receive([](bool) {}, [&](caf::error& e) { result = translate(std::move(e)); });
    return result;
  }

  template <class R, class Handle, class... Ts>
  caf::expected<R> ask(const Handle& h, caf::duration timeout, Ts&&... xs) {
    caf::expected<R> result = make_error(errc::unavailable, "the engine is closed");
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (closed)
        return result;
    }
    caf::scoped_actor self{*sys};
    self->request(h, timeout, std::forward<Ts>(xs)...)
      .receive([&](R& r) { result = std::move(r); },
               [&](caf::error& e) { result = translate(std::move(e)); });
    return result;
  }

  /// Archives what is old enough every `retention.every` until told to stop.
  void retention_loop(engine& e) {
    auto& r = opts.retention;
    std::unique_lock<std::mutex> lk{mtx};
    while (!retention_stop) {
      if (retention_cv.wait_for(lk, r.every, [this] { return retention_stop; }))
        break;
      lk.unlock();
      auto file = r.archive_dir + "/runs-" + std::to_string(wall_now_ms()) + ".jsonl";
      auto n = e.archive(r.age, file);
      if (!n)
        log().error("journal: retention: {}", describe(n.error()));
      else if (*n > 0 && opts.notify)
        opts.notify({"", "", "journal.archived",
                     "archived " + std::to_string(*n) + " run(s) to " + file});
      lk.lock();
    }
  }

  /// Starts the scheduler and resumes the batches the journal holds that did not finish.
  caf::error start_scheduler() {
    auto env = std::make_shared<scheduler_env>();
    env->engine = front;
    env->journal = journal;
    env->fleet = fleet ? fleet->shared_handles() : nullptr;
    env->templates = &templates;
    env->kinds = &registry->catalog();
    scheduler = spawn_scheduler(*sys, env);
    std::vector<batch_record> unfinished;
    caf::error bad;
    auto err = st->for_each_batch([&](std::string_view name, std::string_view bytes) {
      auto rec = decode_batch_record(bytes);
      if (!rec) {
        log().error("journal: batch {} cannot be read: {}", std::string{name},
                    describe(rec.error()));
        return true;
      }
      unfinished.push_back(std::move(*rec));
      return true;
    });
    if (err)
      return err;
    for (auto& rec : unfinished) {
      auto r = ask<batch_status>(scheduler, caf::infinite, submit_atom::value, std::move(rec),
                                 false);
      if (!r)
        return r.error();
    }
    return {};
  }

  caf::expected<control_ack> control(const run_id& id, control_request::op op,
                                     std::string task, std::string actor,
                                     std::string reason = {}) {
    // An abort's reason is kept in the journal and shown by every listing: a bounded text,
    // not a payload (100 KB went into the journal and into each line of `ferry list`).
    if (reason.size() > max_reason_bytes)
      return make_error(errc::invalid_argument,
                        "abort: field \"reason\": at most " + std::to_string(max_reason_bytes)
                          + " bytes, got " + std::to_string(reason.size()));
    control_request req;
    req.action = op;
    req.task = std::move(task);
    req.actor = std::move(actor);
    req.reason = std::move(reason);
    // Text from outside, held and served as the journal keeps it (common/utf8.hpp).
    make_valid_utf8(req.actor);
    make_valid_utf8(req.reason);
    return call<control_ack>(control_atom::value, id, std::move(req));
  }
};

caf::expected<std::unique_ptr<engine>> engine::open(engine_options opts) {
  auto p = std::make_unique<impl>();
  p->opts = std::move(opts);
  // Options that cannot work are refused before the journal is opened (or created).
  if (p->opts.scheduler_policy != "sharing" && p->opts.scheduler_policy != "stealing")
    return make_error(errc::invalid_argument,
                      "engine options: field \"scheduler_policy\": must be \"sharing\" or "
                      "\"stealing\", got \"" + p->opts.scheduler_policy + "\"");
  if (p->opts.threads > max_engine_threads)
    return make_error(errc::invalid_argument,
                      "engine options: field \"threads\": at most "
                        + std::to_string(max_engine_threads) + ", got "
                        + std::to_string(p->opts.threads));
  // The world the runtime makes runs at sim_speed: nan, inf or 0 gave a clock that never
  // moves (or overflows), and runs on simulated hosts that wait for ever.
  if (p->opts.fleet && !p->opts.fleet_opts.sim
      && !(p->opts.fleet_opts.sim_speed > 0 && p->opts.fleet_opts.sim_speed <= 1e9))
    return make_error(errc::invalid_argument,
                      "engine options: field \"fleet_opts.sim_speed\": must be greater than 0 "
                      "and at most 1e9, got " + std::to_string(p->opts.fleet_opts.sim_speed));
  if (p->opts.retention.age.count() > 0 && p->opts.retention.archive_dir.empty())
    return make_error(errc::invalid_argument,
                      "engine options: field \"retention.archive_dir\": required with an age");
  for (auto& dir : p->opts.template_dirs)
    if (auto files = template_files(dir); !files)
      return files.error();
  if (p->opts.journal_path.empty()) {
    p->st = make_memory_store();
  } else {
    rocksdb_store_options so;
    so.create_if_missing = p->opts.create_journal;
    so.log = [](const std::string& m) { log().warn("{}", m); };
    auto st = open_rocksdb_store(p->opts.journal_path, so);
    if (!st)
      return st.error();
    p->st = std::move(*st);
  }
  p->timers = std::make_unique<timer_service>();
  p->registry = std::make_unique<executor_registry>();
  add_builtin_kinds(*p->registry, *p->timers);
  p->registry->add(make_notify_kind(p->opts.notify));
  for (auto& e : p->opts.executors)
    p->registry->add(e);
  auto threads = p->opts.threads != 0 ? p->opts.threads
                                      : std::max(1u, std::thread::hardware_concurrency());
  p->cfg = std::make_unique<ferry_config>(threads, p->opts.scheduler_policy);
  p->sys = std::make_unique<caf::actor_system>(*p->cfg);
  journal_options jopts;
  jopts.sync = p->opts.sync;
  jopts.max_batch = p->opts.max_batch;
  p->window = std::make_unique<commit_window>(p->opts.max_inflight_commits,
                                              &p->metrics.window_wait);
  p->journal = spawn_journal(*p->sys, p->st, jopts, &p->metrics, p->window.get());
  p->env = std::make_shared<migration_env>();
  p->env->journal = p->journal;
  p->env->registry = p->registry.get();
  p->env->timers = p->timers.get();
  p->env->metrics = &p->metrics;
  p->env->window = p->window.get();
  p->env->history = p->st;
  p->env->inject_fault = p->opts.inject_fault;
  p->env->inject_lost_answer = p->opts.inject_lost_answer;
  p->env->gate = p->gate;
  // Generated run ids continue from the wall clock: unique across restarts.
  auto seed = static_cast<uint64_t>(wall_now_ms()) << 12;
  p->front = spawn_engine(*p->sys, p->env, p->st, seed);
  // From here on, a failure closes the engine (its destructor stops the actors it started).
  std::unique_ptr<engine> eng{new engine(std::move(p))};
  auto& q = *eng->impl_;
  if (q.opts.fleet) {
    // The fleet's actors come back with their durable state before any run resumes.
    auto state = read_fleet_state(*q.st);
    if (!state)
      return state.error();
    auto rt = fleet_runtime::start(*q.sys, q.opts.fleet, *state, q.opts.fleet_opts, q.gate);
    if (!rt)
      return rt.error();
    q.fleet = std::move(*rt);
    add_fleet_kinds(*q.registry, *q.sys, q.fleet->shared_handles());
    add_vm_kinds(*q.registry, q.fleet->shared_handles());
    add_migration_kinds(*q.registry, *q.sys, q.fleet->shared_handles(), q.opts.notify,
                        q.opts.on_progress, &q.metrics);
    // Executors given in the options replace built-in ones, fleet kinds included.
    for (auto& e : q.opts.executors)
      q.registry->add(e);
  }
  // The registry holds them from now on: close() lets them go.
  q.opts.executors.clear();
  if (auto err = q.templates.load_builtin(q.opts.template_dirs, q.registry->catalog()))
    return err;
  auto skipped = q.templates.load_stored(*q.st, q.registry->catalog());
  if (!skipped)
    return skipped.error();
  for (auto& s : *skipped)
    log().error("journal: template {} is not loaded", s);
  if (auto n = eng->impl_->recover(); n)
    eng->impl_->recovered = *n;
  else
    return n.error();
  if (auto err = eng->impl_->start_scheduler())
    return err;
  auto& ret = eng->impl_->opts.retention;
  if (ret.age.count() > 0) {
    std::error_code ec;
    std::filesystem::create_directories(ret.archive_dir, ec);
    if (ec)
      return make_error(errc::invalid_argument, "engine options: field "
                                                "\"retention.archive_dir\": "
                                                  + ret.archive_dir + ": " + ec.message());
    auto* e = eng.get();
    eng->impl_->retention = std::thread([e] { e->impl_->retention_loop(*e); });
    name_thread(eng->impl_->retention, "ferry.retention");
  }
  return eng;
}

engine::engine(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

engine::~engine() {
  close();
}

void engine::close() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (impl_->closed)
      return;
  }
  auto& p = *impl_;
  if (p.retention.joinable()) {
    {
      std::lock_guard<std::mutex> guard{p.mtx};
      p.retention_stop = true;
    }
    p.retention_cv.notify_all();
    p.retention.join();
  }
  // The scheduler first: it starts runs and writes its batches, and would find the engine
  // gone. Batches not finished resume on the next open.
  if (p.scheduler) {
    caf::scoped_actor self{*p.sys};
    self->monitor(p.scheduler);
    self->send_exit(p.scheduler, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
    p.scheduler = nullptr;
  }
  {
    caf::scoped_actor self{*p.sys};
    self->request(p.front, caf::infinite, stop_atom::value)
      .receive([](journal_stats&) {}, [](caf::error&) {});
  }
  // Every run was told to stop; one may still be handling a message (a transition the
  // journal acknowledged, whose attempts it hands out): the executors, the fleet and the
  // timers go only once no run is left.
  p.env->census->wait_none();
  // The runs are stopped: an answer from a driver, the simulator or an executor's thread
  // arriving from now on must not reach the actor system, nor the metrics, that go below.
  p.gate->shut();
  std::unordered_map<uint64_t, watcher_actor> watchers;
  {
    std::lock_guard<std::mutex> guard{p.mtx};
    p.closed = true;
    watchers.swap(p.watchers);
  }
  for (auto& [k, w] : watchers)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  // Nothing may send into the actor system once it is gone: stop the timers and the
  // executors' threads first.
  p.timers->stop();
  p.registry.reset();
  p.fleet.reset();
  p.journal = nullptr;
  p.front = nullptr;
  // Run actors point at the environment, so it goes after them; its handles go now, or the
  // journal's thread would wait for them forever.
  p.env->journal = nullptr;
  p.env->engine = nullptr;
  p.sys.reset();
  p.env.reset();
  p.st.reset();
}

fleet_runtime* engine::fleet() const {
  return impl_->fleet.get();
}

caf::expected<template_ptr> engine::put_template(std::string_view source) {
  return impl_->templates.put(source, kinds(), [this](auto& name, auto& encoded) {
    return impl_->write_template(name, encoded);
  });
}

caf::expected<template_ptr> engine::get_template(const std::string& name) const {
  return impl_->templates.get(name);
}

std::vector<template_ptr> engine::list_templates() const {
  return impl_->templates.list();
}

caf::error engine::delete_template(const std::string& name) {
  return impl_->templates.remove(name, [this](auto& n, auto& encoded) {
    return impl_->write_template(n, encoded);
  });
}

caf::expected<batch_status> engine::submit_batch(const batch_spec& spec) {
  auto& p = *impl_;
  if (auto err = check_batch(spec))
    return err;
  auto* model = p.opts.fleet.get();
  auto find = [&](const std::string& name, const std::string& field) -> caf::expected<template_ptr> {
    auto t = p.templates.get(name);
    if (!t)
      return make_error(errc::invalid_argument,
                        "batch: " + field + ": no template \"" + name + "\"");
    return t;
  };
  template_ptr fallback;
  if (!spec.fallback_template.empty()) {
    auto t = find(spec.fallback_template, "fallback_template");
    if (!t)
      return t.error();
    fallback = *t;
  }
  // What the arguments make of a template's tasks (a number out of a kind's range...) is
  // found by rendering: one item per template and arguments is rendered here as the scheduler
  // will render it when it starts, so that the batch is refused now rather than each of its
  // items failing then. The target the scheduler would choose is stood in for by the VM's
  // host.
  std::set<std::string> probed;
  auto probe = [&](const migration_template& t, const std::string& vm,
                   std::map<std::string, std::string> args) -> caf::error {
    std::string key = t.name;
    for (auto& [k, v] : args)
      key += '\0' + k + '=' + v;
    if (!probed.insert(std::move(key)).second)
      return {};
    if (model && t.find("target") && args.count("target") == 0) {
      auto v = model->find_vm(vm);
      if (v != fleet::npos && model->vms[v].host != fleet::npos)
        args["target"] = model->hosts[model->vms[v].host].name;
    }
    std::vector<std::string> raw{"vm=" + vm};
    for (auto& [k, v] : args)
      raw.push_back(k + "=" + v);
    auto a = parse_template_args(t, raw);
    if (!a)
      return a.error();
    auto d = render(t, *a);
    return d ? caf::error{} : d.error();
  };
  for (size_t i = 0; i < spec.items.size(); ++i) {
    auto& it = spec.items[i];
    auto field = "items[" + std::to_string(i) + "]";
    auto t = find(it.template_name.empty() ? spec.template_name : it.template_name,
                  field + ".template");
    if (!t)
      return t.error();
    if (model && model->find_vm(it.vm) == fleet::npos)
      return make_error(errc::invalid_argument,
                        "batch: " + field + ".vm: \"" + it.vm + "\" is not in the fleet");
    if (auto err = probe(**t, it.vm, item_args(spec, i)))
      return make_error(errc::invalid_argument,
                        "batch: " + field + ".args: " + message_of(err));
    if (fallback) {
      if (auto err = probe(*fallback, it.vm, item_args(spec, i, fallback.get())))
        return make_error(errc::invalid_argument, "batch: " + field
                                                    + ".args (fallback_template \""
                                                    + fallback->name + "\"): "
                                                    + message_of(err));
    }
  }
  batch_record rec;
  rec.spec = spec;
  rec.created = wall_now_ms();
  return p.ask<batch_status>(p.scheduler, caf::duration{p.opts.call_timeout},
                             submit_atom::value, std::move(rec), true);
}

caf::expected<uint64_t> engine::archive(std::chrono::milliseconds older_than,
                                        const std::string& file) {
  auto& p = *impl_;
  return p.ask<uint64_t>(p.front, caf::duration{std::chrono::minutes(30)}, archive_atom::value,
                         wall_now_ms() - static_cast<time_ms>(older_than.count()), file);
}

caf::expected<batch_status> engine::drain(const drain_request& req) {
  auto* f = fleet();
  if (!f)
    return make_error(errc::failed_precondition, "drain: the engine has no fleet");
  auto vms = f->vms();
  if (!vms)
    return vms.error();
  auto spec = drain_batch(req, f->model(), *vms);
  if (!spec && code_of(spec.error()) != errc::failed_precondition)
    return spec.error();
  // The same drain again (the command run again after a restart, or after its connection was
  // lost) is the drain under way, or done, under its name: not a new batch of the VMs left.
  auto name = drain_settings(req).name;
  if (auto existing = get_batch(name); existing && is_same_drain(*existing, req, f->model())) {
    auto moved_all = [&] {
      for (auto& it : spec->items)
        if (!existing->spec->find(it.vm))
          return false;
      return true;
    };
    if (!existing->finished || !spec || moved_all())
      return submit_batch(*existing->spec);
    return make_error(errc::already_exists,
                      "batch \"" + name + "\": a finished drain has this name, and "
                        + (req.host.empty() ? "zone \"" + req.zone : "host \"" + req.host)
                        + "\" runs VMs it did not move: give this drain another name");
  }
  if (!spec)
    return spec.error();
  return submit_batch(*spec);
}

caf::expected<batch_status> engine::get_batch(const std::string& name) {
  auto& p = *impl_;
  return p.ask<batch_status>(p.scheduler, caf::duration{p.opts.call_timeout}, get_atom::value,
                             name);
}

caf::expected<std::vector<batch_status>> engine::list_batches() {
  auto& p = *impl_;
  return p.ask<std::vector<batch_status>>(p.scheduler, caf::duration{p.opts.call_timeout},
                                          list_atom::value);
}

caf::expected<batch_status> engine::cancel_batch(const std::string& name) {
  auto& p = *impl_;
  return p.ask<batch_status>(p.scheduler, caf::duration{p.opts.call_timeout},
                             cancel_atom::value, name);
}

caf::expected<batch_status> engine::wait_batch(const std::string& name,
                                               std::chrono::milliseconds timeout) {
  auto& p = *impl_;
  auto r = p.ask<batch_status>(p.scheduler, caf::duration{timeout}, done_atom::value, name);
  if (!r && code_of(r.error()) == errc::deadline_exceeded)
    return make_error(errc::deadline_exceeded,
                      "batch \"" + name + "\": not finished after "
                        + std::to_string(timeout.count()) + " ms");
  return r;
}

void engine::wait_batch_async(const std::string& name, std::chrono::milliseconds timeout,
                              std::function<void(caf::expected<batch_status>)> done) {
  auto& p = *impl_;
  scheduler_actor sched;
  {
    std::lock_guard<std::mutex> guard{p.mtx};
    if (!p.closed)
      sched = p.scheduler;
  }
  if (!sched) {
    done(make_error(errc::unavailable, "the engine is closed"));
    return;
  }
  auto call_timeout = caf::duration{p.opts.call_timeout};
  p.sys->spawn([sched, name, timeout, call_timeout,
                fn = std::move(done)](caf::event_based_actor* self) mutable {
    // One answer, from whichever comes first: the scheduler's, or its end (the engine closes).
    auto once = std::make_shared<std::function<void(caf::expected<batch_status>)>>(std::move(fn));
    auto answer = [self, once](caf::expected<batch_status> x) {
      if (*once) {
        auto f = std::move(*once);
        *once = nullptr;
        f(std::move(x));
      }
      self->quit();
    };
    self->monitor(sched);
    self->set_down_handler([answer](caf::down_msg&) {
      answer(make_error(errc::unavailable, "the engine is closed"));
    });
    self->request(sched, caf::duration{timeout}, done_atom::value, name)
      .then([answer](batch_status& s) { answer(std::move(s)); },
            [self, sched, name, call_timeout, answer](caf::error& err) {
              auto e = translate(std::move(err));
              if (code_of(e) != errc::deadline_exceeded)
                return answer(std::move(e));
              // Not finished yet: its status now.
              self->request(sched, call_timeout, get_atom::value, name)
                .then([answer](batch_status& s) { answer(std::move(s)); },
                      [answer](caf::error& e2) { answer(translate(std::move(e2))); });
            });
  });
}

caf::expected<definition_ptr> engine::render_template(const std::string& name,
                                                      const template_args& args) const {
  auto t = impl_->templates.get(name);
  if (!t)
    return t.error();
  return render(**t, args);
}

caf::expected<definition_ptr> engine::render(const migration_template& t,
                                             const template_args& args) const {
  vm_locator locate;
  if (auto* f = fleet())
    locate = [f](const std::string& vm, std::string& host, std::string& type) {
      auto loc = f->locate(vm);
      if (!loc || loc->host.empty())
        return false;
      host = loc->host;
      type = loc->type;
      return true;
    };
  return ferry::render(t, args, kinds(), impl_->opts.fleet.get(), locate);
}

const kind_catalog& engine::kinds() const {
  return impl_->registry->catalog();
}

caf::expected<definition_ptr> engine::load(std::string_view source) const {
  return load_definition(source, kinds());
}

caf::expected<definition_ptr> engine::load_file(const std::string& path) const {
  return load_definition_file(path, kinds());
}

namespace {

submit_request make_request(definition_ptr def, submit_options opts) {
  submit_request req;
  req.def = std::move(def);
  req.id = std::move(opts.id);
  req.seed = opts.seed;
  req.not_before = opts.not_before;
  req.actor = std::move(opts.actor);
  make_valid_utf8(req.actor);
  return req;
}

} // namespace

caf::expected<run_id> engine::submit(definition_ptr def, submit_options opts) {
  return impl_->call<run_id>(submit_atom::value, make_request(std::move(def), std::move(opts)));
}

void engine::submit_async(definition_ptr def, submit_options opts,
                          std::function<void(caf::expected<run_id>)> done) {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (impl_->closed) {
      done(make_error(errc::unavailable, "the engine is closed"));
      return;
    }
  }
  // Straight to the engine actor, the answer through a submit_reply: as many submissions may
  // be in flight as the caller likes.
  caf::anon_send(impl_->front, submit_atom::value, make_request(std::move(def), std::move(opts)),
                 submit_reply{[done = std::move(done)](caf::expected<run_id> id) {
                   if (id)
                     done(std::move(id));
                   else
                     done(translate(std::move(id.error())));
                 }});
}

caf::expected<run_state> engine::get(const run_id& id) {
  return impl_->call<run_state>(get_atom::value, id);
}

caf::expected<std::vector<run_summary>> engine::list(const list_filter& filter) {
  return impl_->call<std::vector<run_summary>>(list_atom::value, filter);
}

caf::expected<control_ack> engine::cancel(const run_id& id, const std::string& actor) {
  return impl_->control(id, control_request::op::cancel, {}, actor);
}

caf::expected<control_ack> engine::abort(const run_id& id, const std::string& reason,
                                         const std::string& actor) {
  return impl_->control(id, control_request::op::abort, {}, actor, reason);
}

caf::expected<control_ack> engine::pause(const run_id& id, const std::string& actor) {
  return impl_->control(id, control_request::op::pause, {}, actor);
}

caf::expected<control_ack> engine::resume(const run_id& id, const std::string& actor) {
  return impl_->control(id, control_request::op::resume, {}, actor);
}

caf::expected<control_ack> engine::approve(const run_id& id, const std::string& task,
                                           const std::string& actor) {
  return impl_->control(id, control_request::op::approve, task, actor);
}

caf::expected<control_ack> engine::retry(const run_id& id, const std::string& task,
                                         const std::string& actor) {
  return impl_->control(id, control_request::op::retry, task, actor);
}

watch_handle engine::watch(const run_id& id, uint64_t from_seq,
                           std::function<void(const std::vector<event>&)> on_events,
                           std::function<void(const run_state&)> on_done) {
  auto& p = *impl_;
  std::lock_guard<std::mutex> guard{p.mtx};
  if (p.closed)
    return watch_handle{};
  auto key = p.next_watch++;
  auto w = p.sys->spawn([on_events = std::move(on_events), on_done = std::move(on_done)](
                          watcher_actor::pointer self) -> watcher_actor::behavior_type {
    return {
      [=](events_atom, const run_id&, const std::vector<event>& evs) {
        if (on_events)
          on_events(evs);
      },
      [=](done_atom, const run_id&, const run_state& s) {
        if (on_done)
          on_done(s);
        self->quit();
      },
    };
  });
  p.watchers.emplace(key, w);
  caf::anon_send(p.front, watch_atom::value, id, from_seq, w);
  impl* ip = impl_.get();
  return watch_handle{[ip, key] {
    watcher_actor w;
    {
      std::lock_guard<std::mutex> guard{ip->mtx};
      auto i = ip->watchers.find(key);
      if (i == ip->watchers.end())
        return;
      w = std::move(i->second);
      ip->watchers.erase(i);
    }
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  }};
}

caf::expected<run_state> engine::wait(const run_id& id, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<run_state>>();
  auto future = promise->get_future();
  auto once = std::make_shared<std::once_flag>();
  auto handle = watch(id, UINT64_MAX, nullptr, [promise, once](const run_state& s) {
    std::call_once(*once, [&] { promise->set_value(s); });
  });
  if (future.wait_for(timeout) != std::future_status::ready)
    return make_error(errc::deadline_exceeded,
                      "run \"" + id + "\" did not come to rest within "
                        + std::to_string(timeout.count()) + " ms");
  auto s = future.get();
  if (s.status == run_status::pending && s.seq == 0)
    return make_error(errc::not_found, "run \"" + id + "\": no such run");
  return s;
}

uint64_t engine::recovered() const {
  return impl_->recovered;
}

uint64_t engine::unreadable_runs() const {
  return impl_->unreadable;
}

engine::commit_queue engine::commit_queue_depth() const {
  if (!impl_->window)
    return {};
  return {impl_->window->in_flight(), impl_->window->waiting()};
}

bool engine::is_builtin_template(const std::string& name) const {
  return impl_->templates.is_builtin(name);
}

engine_metrics& engine::metrics() {
  return impl_->metrics;
}

caf::expected<journal_stats> engine::journal_statistics() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    if (impl_->closed)
      return make_error(errc::unavailable, "the engine is closed");
  }
  caf::scoped_actor self{*impl_->sys};
  caf::expected<journal_stats> result = make_error(errc::unavailable, "no answer");
  self->request(impl_->journal, caf::duration{impl_->opts.call_timeout}, stats_atom::value)
    .receive([&](journal_stats& s) { result = s; },
             [&](caf::error& e) { result = translate(std::move(e)); });
  return result;
}

} // namespace ferry
