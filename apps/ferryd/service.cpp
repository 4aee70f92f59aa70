#include "apps/ferryd/service.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "apps/ferryd/client.hpp"
#include "apps/ferryd/convert.hpp"
#include "apps/ferryd/status.hpp"
#include "templates/batch.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry::daemon {

void call_counters::count(const char* method, int code) {
  std::lock_guard<std::mutex> g{mtx_};
  auto i = counts_.find(std::string_view{method});
  if (i == counts_.end())
    i = counts_.emplace(method, row{}).first;
  i->second[static_cast<size_t>(code) < codes ? static_cast<size_t>(code) : 2] += 1;
}

std::map<std::string, call_counters::row> call_counters::snapshot() const {
  std::lock_guard<std::mutex> g{mtx_};
  return {counts_.begin(), counts_.end()};
}

namespace {

constexpr size_t max_key = 128;
constexpr uint32_t default_page = 100;
constexpr uint32_t max_page = 1000;

bool valid_key(const std::string& k) {
  if (k.size() > max_key)
    return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == ':' || c == '-';
  });
}

std::vector<std::string> args_of(const v1::TemplateCall& t) {
  std::vector<std::string> out;
  std::map<std::string, std::string> sorted(t.parameters().begin(), t.parameters().end());
  for (auto& [k, v] : sorted)
    out.push_back(k + "=" + v);
  return out;
}

/// Whether a label value names `what` (exactly, or as an element of a comma list).
bool names(const std::string& value, const std::string& what) {
  if (value == what)
    return true;
  size_t start = 0;
  while (start <= value.size()) {
    auto end = value.find(',', start);
    if (end == std::string::npos)
      end = value.size();
    if (value.compare(start, end - start, what) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

class service final : public v1::Ferry::CallbackService {
public:
  explicit service(service_context ctx) : ctx_(ctx), eng_(*ctx.eng) {
  }

  using unary = grpc::ServerUnaryReactor;
  using context = grpc::CallbackServerContext;

  /// Authenticates and authorizes the call; on failure finishes `r` and returns false.
  bool allowed(context* c, unary* r, const char* method, role need, principal& who) {
    auto st = check(c, need, method, who);
    if (!st.ok()) {
      finish(r, method, st);
      return false;
    }
    return true;
  }

  grpc::Status check(context* c, role need, const char* method, principal& who) {
    std::string_view header;
    auto& md = c->client_metadata();
    if (auto i = md.find("authorization"); i != md.end())
      header = std::string_view{i->second.data(), i->second.size()};
    // The transport matters only to a call without a token (peer() builds a string).
    auto unix_socket = header.empty() && c->peer().rfind("unix:", 0) == 0;
    auto p = ctx_.auth->authenticate(header, unix_socket);
    if (!p)
      return status_of(p.error());
    if (auto err = authenticator::authorize(*p, need, method))
      return status_of(err);
    who = std::move(*p);
    return grpc::Status::OK;
  }

  void finish(unary* r, const char* method, const grpc::Status& st) {
    ctx_.calls->count(method, static_cast<int>(st.error_code()));
    r->Finish(st);
  }

  // -- runs -------------------------------------------------------------------------------

  unary* Submit(context* c, const v1::SubmitRequest* req, v1::SubmitResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "submit", role::operator_, who))
      return r;
    const auto& key = req->idempotency_key();
    if (!valid_key(key))
      return finish(r, "submit",
                    invalid("idempotency_key: \"" + key.substr(0, 40)
                            + "\": at most 128 characters of [A-Za-z0-9._:-]")),
             r;
    // A template call with a key that names a run already made returns that run (rendering
    // again could see the fleet changed since).
    if (!key.empty() && req->has_template_()) {
      if (auto existing = eng_.get(key)) {
        resp->set_run_id(key);
        resp->set_existing(true);
        return finish(r, "submit", grpc::Status::OK), r;
      }
    }
    caf::expected<definition_ptr> def{caf::error{}};
    std::string field;
    switch (req->source_case()) {
      case v1::SubmitRequest::kDefinition:
        field = "definition: ";
        def = cached_definition(req->definition().SerializeAsString(), true);
        break;
      case v1::SubmitRequest::kDefinitionText:
        field = "definition_text: ";
        def = cached_definition(req->definition_text(), false);
        break;
      case v1::SubmitRequest::kTemplate:
        def = render(req->template_(), field);
        break;
      default:
        return finish(r, "submit",
                      invalid("source: give one of definition, definition_text or template")),
               r;
    }
    if (!def)
      return finish(r, "submit", status_of(def.error(), field)), r;
    if (!key.empty()) {
      auto existing = eng_.get(key);
      if (existing) {
        if (existing->def && existing->def->digest == (*def)->digest) {
          resp->set_run_id(key);
          resp->set_existing(true);
          return finish(r, "submit", grpc::Status::OK), r;
        }
        return finish(r, "submit",
                      grpc::Status{grpc::StatusCode::ALREADY_EXISTS,
                                   "idempotency_key: run \"" + key
                                     + "\" exists with another definition"}),
               r;
      }
      if (code_of(existing.error()) != errc::not_found)
        return finish(r, "submit", status_of(existing.error())), r;
    }
    submit_options opts;
    opts.id = key;
    opts.seed = req->seed();
    opts.not_before = req->not_before_ms();
    opts.actor = who.name;
    auto* calls = ctx_.calls;
    eng_.submit_async(*def, std::move(opts), [r, resp, calls](caf::expected<run_id> id) {
      grpc::Status st = grpc::Status::OK;
      if (id)
        resp->set_run_id(*id);
      else
        st = status_of(id.error());
      calls->count("submit", static_cast<int>(st.error_code()));
      r->Finish(st);
    });
    return r;
  }

  unary* Get(context* c, const v1::GetRequest* req, v1::Run* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "get", role::viewer, who))
      return r;
    if (req->run_id().empty())
      return finish(r, "get", invalid("run_id: required")), r;
    if (auto problem = api::wait_problem(req->wait_ms()); !problem.empty())
      return finish(r, "get", invalid(problem)), r;
    if (!v1::RunView_IsValid(req->view()))
      return finish(r, "get", invalid("view: unknown")), r;
    if (req->wait_ms() > 0) {
      // The engine's watch answers at once for a run at rest, and for an unknown one.
      ctx_.calls->count("get", 0);
      start_wait(eng_, *ctx_.hub, r, resp, req->run_id(), std::chrono::milliseconds{req->wait_ms()},
                 req->view() == v1::RUN_VIEW_FULL);
      return r;
    }
    auto s = eng_.get(req->run_id());
    if (!s)
      return finish(r, "get", status_of(s.error(), "run_id: ")), r;
    api::to_proto(*s, *resp, req->view() == v1::RUN_VIEW_FULL);
    return finish(r, "get", grpc::Status::OK), r;
  }

  unary* List(context* c, const v1::ListRequest* req, v1::ListResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "list", role::viewer, who))
      return r;
    if (req->page_size() > max_page)
      return finish(r, "list",
                    invalid("page_size: " + std::to_string(req->page_size())
                            + " is more than " + std::to_string(max_page))),
             r;
    auto page = req->page_size() == 0 ? default_page : req->page_size();
    list_filter f;
    for (int i = 0; i < req->states_size(); ++i) {
      auto s = req->states(i);
      if (s < v1::RUN_PENDING || s > v1::RUN_ABORTED)
        return finish(r, "list",
                      invalid("states[" + std::to_string(i) + "]: not a run state")),
               r;
      f.statuses.push_back(api::from_proto(static_cast<v1::RunStatus>(s)));
    }
    f.after = req->page_token();
    auto filtered = !req->vm().empty() || !req->host().empty() || !req->zone().empty()
                    || !req->template_().empty();
    std::set<std::string> hosts_of_zone;
    if (!req->zone().empty()) {
      auto* rt = eng_.fleet();
      if (rt) {
        auto& m = rt->model();
        auto zi = m.find_zone(req->zone());
        if (zi == fleet::npos)
          return finish(r, "list",
                        grpc::Status{grpc::StatusCode::NOT_FOUND,
                                     "zone: \"" + req->zone() + "\" is not in the fleet"}),
                 r;
        for (auto& h : m.hosts)
          if (h.zone == zi)
            hosts_of_zone.insert(h.name);
      }
    }
    // Without label filters one page of the engine is the page; with them, pages of the
    // engine are read until this page is full.
    f.limit = filtered ? 512 : page + 1;
    for (;;) {
      auto runs = eng_.list(f);
      if (!runs)
        return finish(r, "list", status_of(runs.error())), r;
      for (auto& s : *runs) {
        if (static_cast<uint32_t>(resp->runs_size()) == page) {
          resp->set_next_page_token(resp->runs(resp->runs_size() - 1).run_id());
          return finish(r, "list", grpc::Status::OK), r;
        }
        if (filtered && !matches(s, *req, hosts_of_zone))
          continue;
        api::to_proto(s, *resp->add_runs());
      }
      if (!filtered || runs->size() < f.limit)
        break;
      f.after = runs->back().id;
    }
    return finish(r, "list", grpc::Status::OK), r;
  }

  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(context* c,
                                                     const v1::WatchRequest* req) override {
    principal who;
    auto st = check(c, role::viewer, "watch", who);
    if (st.ok() && req->run_id().empty())
      st = invalid("run_id: required");
    ctx_.calls->count("watch", static_cast<int>(st.error_code()));
    if (!st.ok()) {
      struct refused final : grpc::ServerWriteReactor<v1::WatchResponse> {
        explicit refused(const grpc::Status& s) { Finish(s); }
        void OnDone() override { delete this; }
      };
      return new refused(st);
    }
    return start_watch(eng_, *ctx_.hub, *req);
  }

  unary* control(context* c, const v1::ControlRequest* req, v1::ControlResponse* resp,
                 const char* method, role need, bool needs_task) {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, method, need, who))
      return r;
    if (req->run_id().empty())
      return finish(r, method, invalid("run_id: required")), r;
    if (needs_task && req->task().empty())
      return finish(r, method, invalid("task: required")), r;
    caf::expected<control_ack> ack{caf::error{}};
    const std::string m = method;
    if (m == "cancel")
      ack = eng_.cancel(req->run_id(), who.name);
    else if (m == "abort")
      ack = eng_.abort(req->run_id(), req->reason(), who.name);
    else if (m == "pause")
      ack = eng_.pause(req->run_id(), who.name);
    else if (m == "resume")
      ack = eng_.resume(req->run_id(), who.name);
    else if (m == "approve")
      ack = eng_.approve(req->run_id(), req->task(), who.name);
    else
      ack = eng_.retry(req->run_id(), req->task(), who.name);
    if (!ack)
      return finish(r, method, status_of(ack.error())), r;
    resp->set_seq(ack->seq);
    resp->set_status(api::to_proto(ack->status));
    return finish(r, method, grpc::Status::OK), r;
  }

  unary* Cancel(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "cancel", role::operator_, false);
  }
  unary* Abort(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "abort", role::admin, false);
  }
  unary* Pause(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "pause", role::operator_, false);
  }
  unary* Resume(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "resume", role::operator_, false);
  }
  unary* Approve(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "approve", role::operator_, true);
  }
  unary* Retry(context* c, const v1::ControlRequest* q, v1::ControlResponse* a) override {
    return control(c, q, a, "retry", role::operator_, true);
  }

  // -- the fleet --------------------------------------------------------------------------

  /// The fleet runtime, or finishes `r` with failed_precondition.
  fleet_runtime* fleet_or_fail(unary* r, const char* method) {
    auto* rt = eng_.fleet();
    if (!rt)
      finish(r, method,
             grpc::Status{grpc::StatusCode::FAILED_PRECONDITION,
                          "fleet: ferryd runs without a fleet (set fleet_file in its config)"});
    return rt;
  }

  unary* Fleet(context* c, const v1::FleetRequest*, v1::FleetResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "fleet", role::viewer, who))
      return r;
    if (auto* rt = fleet_or_fail(r, "fleet"))
      finish(r, "fleet", status_of(api::fleet_of(*rt, *resp)));
    return r;
  }

  unary* Recommend(context* c, const v1::RecommendRequest* req,
                   v1::RecommendResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "recommend", role::viewer, who))
      return r;
    if (auto* rt = fleet_or_fail(r, "recommend"))
      finish(r, "recommend", status_of(api::recommend_of(*rt, *req, *resp)));
    return r;
  }

  unary* Options(context* c, const v1::OptionsRequest* req, v1::OptionsResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "options", role::viewer, who))
      return r;
    if (auto* rt = fleet_or_fail(r, "options"))
      finish(r, "options", status_of(api::options_of(*rt, req->vm(), *resp)));
    return r;
  }

  // -- templates --------------------------------------------------------------------------

  unary* ListTemplates(context* c, const v1::ListTemplatesRequest*,
                       v1::ListTemplatesResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "list_templates", role::viewer, who))
      return r;
    for (auto& t : eng_.list_templates()) {
      auto* p = resp->add_templates();
      p->set_name(t->name);
      p->set_version(t->version);
      p->set_description(t->description);
      p->set_builtin(eng_.is_builtin_template(t->name));
    }
    return finish(r, "list_templates", grpc::Status::OK), r;
  }

  unary* GetTemplate(context* c, const v1::GetTemplateRequest* req,
                     v1::TemplateResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "get_template", role::viewer, who))
      return r;
    if (req->name().empty())
      return finish(r, "get_template", invalid("name: required")), r;
    auto t = eng_.get_template(req->name());
    if (!t)
      return finish(r, "get_template", status_of(t.error(), "name: ")), r;
    resp->mutable_template_()->ParseFromString((*t)->encoded);
    resp->set_builtin(eng_.is_builtin_template((*t)->name));
    return finish(r, "get_template", grpc::Status::OK), r;
  }

  unary* PutTemplate(context* c, const v1::PutTemplateRequest* req,
                     v1::TemplateResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "put_template", role::admin, who))
      return r;
    if (req->source().empty())
      return finish(r, "put_template", invalid("source: required")), r;
    auto t = eng_.put_template(req->source());
    if (!t)
      return finish(r, "put_template", status_of(t.error(), "source: ")), r;
    resp->mutable_template_()->ParseFromString((*t)->encoded);
    return finish(r, "put_template", grpc::Status::OK), r;
  }

  unary* DeleteTemplate(context* c, const v1::DeleteTemplateRequest* req,
                        v1::DeleteTemplateResponse*) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "delete_template", role::admin, who))
      return r;
    if (req->name().empty())
      return finish(r, "delete_template", invalid("name: required")), r;
    if (auto err = eng_.delete_template(req->name()))
      return finish(r, "delete_template", status_of(err, "name: ")), r;
    return finish(r, "delete_template", grpc::Status::OK), r;
  }

  unary* RenderTemplate(context* c, const v1::RenderTemplateRequest* req,
                        v1::RenderTemplateResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "render_template", role::viewer, who))
      return r;
    std::string field;
    auto def = render(req->template_(), field);
    if (!def)
      return finish(r, "render_template", status_of(def.error(), field)), r;
    resp->mutable_definition()->ParseFromString((*def)->encoded);
    return finish(r, "render_template", grpc::Status::OK), r;
  }

  // -- batches ----------------------------------------------------------------------------

  unary* SubmitBatch(context* c, const v1::SubmitBatchRequest* req,
                     v1::BatchStatus* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "submit_batch", role::operator_, who))
      return r;
    caf::expected<batch_status> s{caf::error{}};
    switch (req->source_case()) {
      case v1::SubmitBatchRequest::kBatch: {
        auto spec = batch_from_proto(req->batch());
        s = spec ? eng_.submit_batch(*spec) : caf::expected<batch_status>{spec.error()};
        break;
      }
      case v1::SubmitBatchRequest::kBatchText: {
        auto spec = load_batch(req->batch_text());
        s = spec ? eng_.submit_batch(*spec) : caf::expected<batch_status>{spec.error()};
        break;
      }
      case v1::SubmitBatchRequest::kDrain: {
        auto d = drain_from_proto(req->drain());
        s = d ? eng_.drain(*d) : caf::expected<batch_status>{d.error()};
        break;
      }
      default:
        return finish(r, "submit_batch",
                      invalid("source: give one of batch, batch_text or drain")),
               r;
    }
    if (!s)
      return finish(r, "submit_batch", status_of(s.error())), r;
    batch_status_to_proto(*s, *resp);
    return finish(r, "submit_batch", grpc::Status::OK), r;
  }

  unary* GetBatch(context* c, const v1::GetBatchRequest* req, v1::BatchStatus* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "get_batch", role::viewer, who))
      return r;
    if (req->name().empty())
      return finish(r, "get_batch", invalid("name: required")), r;
    if (auto problem = api::wait_problem(req->wait_ms()); !problem.empty())
      return finish(r, "get_batch", invalid(problem)), r;
    if (req->wait_ms() > 0)
      return wait_batch(r, resp, req->name(), std::chrono::milliseconds{req->wait_ms()}), r;
    auto s = eng_.get_batch(req->name());
    if (!s)
      return finish(r, "get_batch", status_of(s.error(), "name: ")), r;
    batch_status_to_proto(*s, *resp);
    return finish(r, "get_batch", grpc::Status::OK), r;
  }

  unary* ListBatches(context* c, const v1::ListBatchesRequest*,
                     v1::ListBatchesResponse* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "list_batches", role::viewer, who))
      return r;
    auto all = eng_.list_batches();
    if (!all)
      return finish(r, "list_batches", status_of(all.error())), r;
    for (auto& s : *all)
      batch_status_to_proto(s, *resp->add_batches());
    return finish(r, "list_batches", grpc::Status::OK), r;
  }

  unary* CancelBatch(context* c, const v1::CancelBatchRequest* req,
                     v1::BatchStatus* resp) override {
    auto* r = c->DefaultReactor();
    principal who;
    if (!allowed(c, r, "cancel_batch", role::operator_, who))
      return r;
    if (req->name().empty())
      return finish(r, "cancel_batch", invalid("name: required")), r;
    auto s = eng_.cancel_batch(req->name());
    if (!s)
      return finish(r, "cancel_batch", status_of(s.error(), "name: ")), r;
    batch_status_to_proto(*s, *resp);
    return finish(r, "cancel_batch", grpc::Status::OK), r;
  }

private:
  /// A GetBatch that waits: answered once, by the engine (the batch finished, or its wait ran
  /// out) or by the hub's timer at the deadline (at once when ferryd stops), with the batch's
  /// status then.
  struct batch_waiter {
    std::mutex mtx;
    bool answered = false;
    std::function<void(caf::expected<batch_status>)> finish;
    deadline_timer::entry deadline;

    void answer(caf::expected<batch_status> s) {
      {
        std::lock_guard<std::mutex> g{mtx};
        if (answered)
          return;
        answered = true;
      }
      finish(std::move(s));
    }
  };

  void wait_batch(unary* r, v1::BatchStatus* resp, const std::string& name,
                  std::chrono::milliseconds wait) {
    auto w = std::make_shared<batch_waiter>();
    ctx_.hub->wait_started();
    w->finish = [this, r, resp](caf::expected<batch_status> s) {
      ctx_.hub->wait_answered();
      auto st = s ? grpc::Status::OK : status_of(s.error(), "name: ");
      if (s)
        batch_status_to_proto(*s, *resp);
      finish(r, "get_batch", st);
    };
    auto& timer = ctx_.hub->timer();
    std::weak_ptr<batch_waiter> weak = w;
    // The deadline goes in first: the engine may answer at once.
    w->deadline = timer.add(deadline_timer::clock::now() + wait, [weak, this, name] {
      if (auto w = weak.lock())
        w->answer(eng_.get_batch(name));
    });
    // The engine answers when the batch finished, or with its status when its own wait of the
    // same length ran out; whichever of the two answers first is the answer. (Leaving the
    // second case to the timer dropped the waiter when the engine came first: the timer only
    // holds it weakly, and the call went unanswered.)
    eng_.wait_batch_async(name, wait, [w, &timer](caf::expected<batch_status> s) {
      timer.remove(w->deadline);
      w->answer(std::move(s));
    });
  }

  /// Parses and validates a definition, or finds it among those parsed before: clients
  /// submit the same definitions again and again, and parsing, validating and hashing one
  /// costs more than the rest of a submit.
  caf::expected<definition_ptr> cached_definition(const std::string& source, bool binary) {
    auto key = (binary ? "b:" : "t:") + source;
    {
      std::lock_guard<std::mutex> g{defs_mtx_};
      if (auto i = defs_.find(key); i != defs_.end())
        return i->second;
    }
    auto def = binary ? load_definition(source, eng_.kinds(), definition_format::binary)
                      : eng_.load(source);
    if (!def)
      return def;
    std::lock_guard<std::mutex> g{defs_mtx_};
    if (defs_.size() >= max_cached_definitions)
      defs_.clear();
    defs_.emplace(std::move(key), *def);
    return def;
  }

  /// Renders a template call against the fleet; `field` names what an error is about.
  caf::expected<definition_ptr> render(const v1::TemplateCall& call, std::string& field) {
    field = "template.name: ";
    if (call.name().empty())
      return make_error(errc::invalid_argument, "required");
    auto t = eng_.get_template(call.name());
    if (!t)
      return t.error();
    field = "template.parameters: ";
    auto args = parse_template_args(**t, args_of(call));
    if (!args)
      return args.error();
    field = "template: ";
    return eng_.render(**t, *args);
  }

  /// Whether a run's definition's labels name the VM, host, zone and template asked for.
  bool matches(const run_summary& s, const v1::ListRequest& req,
               const std::set<std::string>& hosts_of_zone) {
    auto labels = labels_of(s);
    if (!labels)
      return false;
    auto any = [&](auto pred) {
      for (auto& [k, v] : *labels)
        if (pred(k, v))
          return true;
      return false;
    };
    if (!req.template_().empty()) {
      auto i = labels->find("template");
      if (i == labels->end() || i->second != req.template_())
        return false;
    }
    if (!req.vm().empty() && !any([&](auto&, auto& v) { return names(v, req.vm()); }))
      return false;
    if (!req.host().empty() && !any([&](auto&, auto& v) { return names(v, req.host()); }))
      return false;
    if (!req.zone().empty()
        && !any([&](auto&, auto& v) {
             if (names(v, req.zone()))
               return true;
             for (auto& h : hosts_of_zone)
               if (names(v, h))
                 return true;
             return false;
           }))
      return false;
    return true;
  }

  /// A run's definition's labels, cached by digest.
  std::shared_ptr<const std::map<std::string, std::string>> labels_of(const run_summary& s) {
    {
      std::lock_guard<std::mutex> g{labels_mtx_};
      if (auto i = labels_.find(s.definition_digest); i != labels_.end())
        return i->second;
    }
    auto st = eng_.get(s.id);
    if (!st || !st->def)
      return nullptr;
    auto l = std::make_shared<const std::map<std::string, std::string>>(st->def->labels);
    std::lock_guard<std::mutex> g{labels_mtx_};
    if (labels_.size() > 100000)
      labels_.clear();
    labels_.emplace(s.definition_digest, l);
    return l;
  }

  static constexpr size_t max_cached_definitions = 512;

  service_context ctx_;
  engine& eng_;
  std::mutex defs_mtx_;
  std::unordered_map<std::string, definition_ptr> defs_;
  std::mutex labels_mtx_;
  std::unordered_map<std::string, std::shared_ptr<const std::map<std::string, std::string>>>
    labels_;
};

} // namespace

std::unique_ptr<v1::Ferry::CallbackService> make_service(service_context ctx) {
  return std::make_unique<service>(ctx);
}

} // namespace ferry::daemon
