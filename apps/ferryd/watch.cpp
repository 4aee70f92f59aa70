#include "apps/ferryd/watch.hpp"

#include <deque>


#include "apps/ferryd/convert.hpp"
#include "apps/ferryd/status.hpp"

namespace ferry::daemon {

// -- the deadline timer --------------------------------------------------------------------

deadline_timer::deadline_timer() : thread_([this] { loop(); }) {
}

deadline_timer::~deadline_timer() {
  stop();
}

deadline_timer::entry deadline_timer::add(clock::time_point at, std::function<void()> fn) {
  std::lock_guard<std::mutex> g{mtx_};
  bool earliest = q_.empty() || at < q_.begin()->first.first;
  entry e{at, ++next_};
  q_.emplace(e, std::move(fn));
  if (earliest || expedite_)
    cv_.notify_one();
  return e;
}

bool deadline_timer::remove(const entry& e) {
  std::lock_guard<std::mutex> g{mtx_};
  return q_.erase(e) > 0;
}

void deadline_timer::stop() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    stopping_ = true;
    q_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void deadline_timer::expedite() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    expedite_ = true;
  }
  cv_.notify_one();
}

void deadline_timer::loop() {
  std::unique_lock<std::mutex> g{mtx_};
  while (!stopping_) {
    if (q_.empty()) {
      cv_.wait(g);
      continue;
    }
    auto at = q_.begin()->first.first;
    if (!expedite_ && clock::now() < at) {
      cv_.wait_until(g, at);
      continue;
    }
    auto fn = std::move(q_.begin()->second);
    q_.erase(q_.begin());
    g.unlock();
    fn();
    g.lock();
  }
}

// -- the hub ------------------------------------------------------------------------------

void watch_hub::publish(const task_progress& p) {
  std::vector<std::shared_ptr<watcher>> targets;
  {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = watches_.find(p.run);
    if (i == watches_.end())
      return;
    for (auto& [k, w] : i->second)
      if (auto s = w.lock())
        targets.push_back(std::move(s));
  }
  for (auto& t : targets)
    t->progress(p);
}

bool watch_hub::add(const run_id& run, const std::shared_ptr<watcher>& w, uint64_t& key) {
  std::lock_guard<std::mutex> g{mtx_};
  if (closed_)
    return false;
  key = ++next_;
  watches_[run].emplace(key, w);
  ++count_;
  return true;
}

void watch_hub::remove(const run_id& run, uint64_t key) {
  std::lock_guard<std::mutex> g{mtx_};
  auto i = watches_.find(run);
  if (i == watches_.end())
    return;
  if (i->second.erase(key) > 0)
    --count_;
  if (i->second.empty())
    watches_.erase(i);
}

void watch_hub::close_all() {
  std::vector<std::shared_ptr<watcher>> all;
  {
    std::lock_guard<std::mutex> g{mtx_};
    closed_ = true;
    for (auto& [run, ws] : watches_)
      for (auto& [k, w] : ws)
        if (auto s = w.lock())
          all.push_back(std::move(s));
  }
  for (auto& w : all)
    w->shut_down();
}

size_t watch_hub::active() const {
  std::lock_guard<std::mutex> g{mtx_};
  return count_;
}

// -- Watch --------------------------------------------------------------------------------

namespace {

class watch_reactor;

/// What the engine's callbacks and the hub reach; outlives the reactor if it must.
struct watch_state : watch_hub::watcher {
  std::mutex mtx;
  watch_reactor* reactor = nullptr; // null once gRPC is done with the call
  definition_ptr def;
  std::deque<v1::WatchResponse> queue;
  v1::WatchResponse current;
  bool writing = false;
  bool at_rest = false;
  bool finished = false;
  grpc::Status final_status;

  void events(const std::vector<event>& evs);
  void done(const run_state& s);
  void progress(const task_progress& p) override;
  void shut_down() override;
  /// Writes the next message, or finishes; mtx held.
  void pump();
};

class watch_reactor final : public grpc::ServerWriteReactor<v1::WatchResponse> {
public:
  watch_reactor(engine& eng, watch_hub& hub, run_id id)
    : eng_(eng), hub_(hub), id_(std::move(id)), state_(std::make_shared<watch_state>()) {
  }

  void start(const v1::WatchRequest& req) {
    auto st = eng_.get(id_);
    if (!st) {
      Finish(status_of(st.error(), "run_id: "));
      return;
    }
    {
      std::lock_guard<std::mutex> g{state_->mtx};
      state_->reactor = this;
      state_->def = st->def;
      v1::WatchResponse first;
      api::to_proto(*st, *first.mutable_run());
      state_->queue.push_back(std::move(first));
      state_->pump();
    }
    if (!hub_.add(id_, state_, key_)) {
      state_->shut_down();
      return;
    }
    auto s = state_;
    auto from = req.from_seq() == 0 ? 1 : req.from_seq();
    handle_ = eng_.watch(
      id_, from, [s](const std::vector<event>& evs) { s->events(evs); },
      [s](const run_state& rs) { s->done(rs); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> g{state_->mtx};
    state_->writing = false;
    if (!ok) { // the client went away
      if (!state_->finished) {
        state_->finished = true;
        Finish(grpc::Status::CANCELLED);
      }
      return;
    }
    state_->pump();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> g{state_->mtx};
    if (!state_->finished && !state_->writing) {
      state_->finished = true;
      Finish(grpc::Status::CANCELLED);
    } else if (!state_->finished) {
      // Finish once the write in progress completes.
      state_->final_status = grpc::Status::CANCELLED;
      state_->at_rest = true;
      state_->queue.clear();
    }
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> g{state_->mtx};
      state_->reactor = nullptr;
    }
    if (key_ != 0)
      hub_.remove(id_, key_);
    handle_.cancel();
    delete this;
  }

private:
  engine& eng_;
  watch_hub& hub_;
  run_id id_;
  std::shared_ptr<watch_state> state_;
  uint64_t key_ = 0;
  watch_handle handle_;
};

void watch_state::pump() {
  if (!reactor || writing || finished)
    return;
  if (!queue.empty()) {
    current = std::move(queue.front());
    queue.pop_front();
    writing = true;
    reactor->StartWrite(&current);
    return;
  }
  if (at_rest) {
    finished = true;
    reactor->Finish(final_status);
  }
}

void watch_state::events(const std::vector<event>& evs) {
  std::lock_guard<std::mutex> g{mtx};
  if (!reactor || at_rest || !def)
    return;
  v1::WatchResponse m;
  api::to_proto(*def, evs, *m.mutable_events());
  queue.push_back(std::move(m));
  pump();
}

void watch_state::done(const run_state& s) {
  std::lock_guard<std::mutex> g{mtx};
  if (!reactor || at_rest)
    return;
  v1::WatchResponse m;
  api::to_proto(s, *m.mutable_final_state());
  queue.push_back(std::move(m));
  at_rest = true;
  final_status = grpc::Status::OK;
  pump();
}

void watch_state::progress(const task_progress& p) {
  std::lock_guard<std::mutex> g{mtx};
  if (!reactor || at_rest)
    return;
  // A report not yet written for the same task is replaced: a slow client gets the latest.
  for (auto& q : queue)
    if (q.has_progress() && q.progress().task() == p.task) {
      api::to_proto(p, *q.mutable_progress());
      return;
    }
  v1::WatchResponse m;
  api::to_proto(p, *m.mutable_progress());
  queue.push_back(std::move(m));
  pump();
}

void watch_state::shut_down() {
  std::lock_guard<std::mutex> g{mtx};
  if (at_rest)
    return;
  queue.clear();
  at_rest = true;
  final_status = grpc::Status{grpc::StatusCode::UNAVAILABLE,
                              "ferryd is shutting down: watch again from the last sequence "
                              "number seen + 1"};
  pump();
}

// -- Get with wait_ms ---------------------------------------------------------------------

struct waiter : std::enable_shared_from_this<waiter> {
  engine* eng = nullptr;
  run_id id;
  grpc::ServerUnaryReactor* r = nullptr;
  v1::Run* resp = nullptr;
  bool with_definition = true;
  std::mutex mtx;
  bool answered = false;
  watch_handle handle;
  deadline_timer* timer = nullptr;
  deadline_timer::entry deadline;
  watch_hub* hub = nullptr;

  /// With the state at rest, or (timer) without: read it now.
  void answer(const run_state* s) {
    {
      std::lock_guard<std::mutex> g{mtx};
      if (answered)
        return;
      answered = true;
    }
    hub->wait_answered();
    if (s) // at rest: the deadline is no longer needed
      timer->remove(deadline);
    if (s && !s->def) { // the engine knows no such run
      r->Finish(grpc::Status{grpc::StatusCode::NOT_FOUND,
                             "run_id: run \"" + id + "\" not found"});
    } else if (s) {
      api::to_proto(*s, *resp, with_definition);
      r->Finish(grpc::Status::OK);
    } else {
      auto now = eng->get(id);
      if (now) {
        api::to_proto(*now, *resp, with_definition);
        r->Finish(grpc::Status::OK);
      } else {
        r->Finish(status_of(now.error(), "run_id: "));
      }
    }
  }
};

} // namespace

grpc::ServerWriteReactor<v1::WatchResponse>* start_watch(engine& eng, watch_hub& hub,
                                                         const v1::WatchRequest& req) {
  auto* r = new watch_reactor(eng, hub, req.run_id());
  r->start(req);
  return r;
}

void start_wait(engine& eng, watch_hub& hub, grpc::ServerUnaryReactor* r, v1::Run* resp,
                const run_id& id, std::chrono::milliseconds wait, bool with_definition) {
  auto w = std::make_shared<waiter>();
  w->with_definition = with_definition;
  w->eng = &eng;
  w->id = id;
  w->r = r;
  w->resp = resp;
  w->timer = &hub.timer();
  w->hub = &hub;
  hub.wait_started();
  std::weak_ptr<waiter> weak = w;
  // The engine's watch owns the waiter until the run is at rest or the deadline passes; the
  // timer only refers to it. The deadline goes in first: the watch may answer at once.
  w->deadline = hub.timer().add(deadline_timer::clock::now() + wait, [weak] {
    if (auto w = weak.lock()) {
      w->answer(nullptr);
      std::lock_guard<std::mutex> g{w->mtx};
      w->handle.cancel();
    }
  });
  std::lock_guard<std::mutex> g{w->mtx};
  w->handle = eng.watch(id, UINT64_MAX, nullptr, [w](const run_state& s) { w->answer(&s); });
}

} // namespace ferry::daemon
