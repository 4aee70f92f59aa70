#include "apps/ferryd/load.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/api.grpc.pb.h"

namespace ferry::api {

namespace {

using clock = std::chrono::steady_clock;

struct shared_state {
  std::mutex mtx;
  std::condition_variable all_done;
  load_result result;
  clock::time_point start;
  clock::time_point last_ack;
  clock::time_point last_rest;
  std::atomic<size_t> to_submit{0};
  size_t outstanding = 0; // runs not yet at rest (or failed); mtx

  void error(const grpc::Status& st) {
    std::lock_guard<std::mutex> g{mtx};
    ++result.errors;
    if (result.first_error.empty())
      result.first_error = std::to_string(st.error_code()) + ": " + st.error_message();
  }

  void one_done() {
    std::lock_guard<std::mutex> g{mtx};
    if (--outstanding == 0)
      all_done.notify_all();
  }
};

// Calls run on gRPC's callback API: their completions run on gRPC's own threads, so the
// load needs no thread per client and no completion-queue threads.
struct logical_client {
  std::unique_ptr<v1::Ferry::Stub> stub;
  shared_state* st = nullptr;
  const load_options* opts = nullptr;
  v1::SubmitRequest req;

  void submit_next() {
    auto left = st->to_submit.load();
    do {
      if (left == 0)
        return;
    } while (!st->to_submit.compare_exchange_weak(left, left - 1));
    struct call {
      grpc::ClientContext ctx;
      v1::SubmitResponse resp;
      clock::time_point t0 = clock::now();
    };
    auto* c = new call;
    prepare(c->ctx, std::chrono::seconds{30});
    stub->async()->Submit(&c->ctx, &req, &c->resp, [this, c](grpc::Status status) {
      auto now = clock::now();
      if (!status.ok()) {
        st->error(status);
        st->one_done();
      } else {
        {
          std::lock_guard<std::mutex> g{st->mtx};
          st->result.acknowledged++;
          st->result.submit_ms.push_back(
            std::chrono::duration<double, std::milli>(now - c->t0).count());
          st->last_ack = std::max(st->last_ack, now);
        }
        wait_for(c->resp.run_id());
      }
      delete c;
      submit_next();
    });
  }

  void wait_for(const std::string& id) {
    struct call {
      grpc::ClientContext ctx;
      v1::GetRequest req;
      v1::Run resp;
    };
    auto* c = new call;
    prepare(c->ctx, opts->timeout);
    c->req.set_run_id(id);
    c->req.set_wait_ms(opts->timeout.count());
    c->req.set_view(v1::RUN_VIEW_STATE);
    stub->async()->Get(&c->ctx, &c->req, &c->resp, [this, c](grpc::Status status) {
      if (!status.ok()) {
        st->error(status);
      } else {
        std::lock_guard<std::mutex> g{st->mtx};
        if (c->resp.state().status() == v1::RUN_SUCCEEDED)
          st->result.succeeded++;
        st->last_rest = std::max(st->last_rest, clock::now());
      }
      delete c;
      st->one_done();
    });
  }

  void prepare(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) const {
    if (!opts->token.empty())
      ctx.AddMetadata("authorization", "Bearer " + opts->token);
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  }
};

} // namespace

load_result run_load(const load_options& opts) {
  shared_state st;
  st.to_submit = opts.runs;
  st.outstanding = opts.runs;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (opts.server.rfind("unix:", 0) != 0) {
    grpc::SslCredentialsOptions ssl;
    auto ca = read_file(opts.ca_file);
    if (!ca) {
      load_result r;
      r.errors = opts.runs;
      r.first_error = "ca_file " + opts.ca_file + ": " + message_of(ca.error());
      return r;
    }
    ssl.pem_root_certs = std::move(*ca);
    creds = grpc::SslCredentials(ssl);
  }
  std::vector<std::unique_ptr<logical_client>> clients;
  for (size_t i = 0; i < opts.clients; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto c = std::make_unique<logical_client>();
    c->stub = v1::Ferry::NewStub(grpc::CreateCustomChannel(opts.server, creds, args));
    c->st = &st;
    c->opts = &opts;
    c->req.set_definition_text(opts.definition);
    clients.push_back(std::move(c));
  }
  st.start = clock::now();
  st.last_ack = st.last_rest = st.start;
  for (auto& c : clients)
    c->submit_next();
  {
    std::unique_lock<std::mutex> g{st.mtx};
    st.all_done.wait_for(g, opts.timeout, [&] { return st.outstanding == 0; });
    if (st.outstanding != 0) {
      auto late = st.outstanding;
      // No new submit; the calls in flight end by their deadlines.
      st.outstanding -= st.to_submit.exchange(0);
      st.all_done.wait(g, [&] { return st.outstanding == 0; });
      st.result.errors += late;
      if (st.result.first_error.empty())
        st.result.first_error = std::to_string(late) + " runs not at rest in time";
    }
  }
  auto& r = st.result;
  std::sort(r.submit_ms.begin(), r.submit_ms.end());
  r.submit_s = std::chrono::duration<double>(st.last_ack - st.start).count();
  r.elapsed_s = std::chrono::duration<double>(st.last_rest - st.start).count();
  return r;
}

} // namespace ferry::api
