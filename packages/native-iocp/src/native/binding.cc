// binding.cc — the thin N-API layer over engine.h. Everything JavaScript can reach is declared
// in src/native.ts (a test checks the two agree).
//
// The IO thread wakes JavaScript through a uv_async_t on node's own loop (libuv coalesces the
// sends; the engine sends at most one per empty -> non-empty turn of its ring). The async
// callback makes ONE JavaScript call per batch: onBatch(tail, head, blocks), where the
// records [tail, head) are read from a Uint32Array over the ring itself and `blocks` holds an
// ArrayBuffer for each BLOCK / FRAME_OWNED record, in order (undefined when there is none).
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#ifndef NAPI_DISABLE_CPP_EXCEPTIONS
#define NAPI_DISABLE_CPP_EXCEPTIONS
#endif
#include <napi.h>
#include <uv.h>

#include <string>

#include "engine.h"

namespace diocp {

namespace {

Napi::Error nativeError(Napi::Env env, const char* code, const std::string& message, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("errnoName", Napi::String::New(env, err != 0 ? uv_err_name(err) : "UNKNOWN"));
  return e;
}

void finalizeBlock(Napi::Env, void*, Block* b) { b->unref(); }

}  // namespace

class NativeServer : public Napi::ObjectWrap<NativeServer> {
 public:
  static Napi::Function Initialize(Napi::Env env) {
    return DefineClass(env, "NativeServer",
                       {
                           InstanceMethod<&NativeServer::Submit>("submit"),
                           InstanceMethod<&NativeServer::StopAccepting>("stopAccepting"),
                           InstanceMethod<&NativeServer::Dispose>("dispose"),
                           InstanceAccessor<&NativeServer::Port>("port"),
                           InstanceAccessor<&NativeServer::Records>("records"),
                           InstanceAccessor<&NativeServer::Counters>("counters"),
                       });
  }

  NativeServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeServer>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      nativeError(env, "DIOCP_ERR_NATIVE_ARGUMENT", "NativeServer(options, onBatch): options must be an object and onBatch a function", 0, "")
          .ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    EngineOptions opt;
    opt.host = o.Get("host").ToString().Utf8Value();
    opt.port = static_cast<uint16_t>(o.Get("port").ToNumber().Uint32Value());
    opt.maxFrameSize = o.Get("maxFrameSize").ToNumber().Uint32Value();
    opt.maxConnections = o.Get("maxConnections").ToNumber().Uint32Value();
    opt.idleTimeoutMs = o.Get("idleTimeoutMs").ToNumber().Uint32Value();
    opt.maxSendQueueBytes = static_cast<uint64_t>(o.Get("maxSendQueueBytes").ToNumber().DoubleValue());
    if (o.Has("ringRecords") && o.Get("ringRecords").IsNumber()) opt.ringRecords = o.Get("ringRecords").ToNumber().Uint32Value();
    onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "diocp:native-batch");

    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    async_ = new uv_async_t;
    async_->data = this;
    uv_async_init(loop, async_, &NativeServer::OnAsync);

    engine_ = new Engine(opt, &NativeServer::Wake, this);
    const char* syscall = "";
    int rc = engine_->start(&syscall);
    if (rc != 0) {
      std::string msg = std::string("cannot listen on ") + opt.host + ":" + std::to_string(opt.port) + ": " + uv_err_name(rc);
      Teardown();
      nativeError(env, "DIOCP_ERR_NATIVE_LISTEN", msg, rc, syscall).ThrowAsJavaScriptException();
      return;
    }
    Napi::ArrayBuffer ringAb = External(env, engine_->ringBlock());
    records_ = Napi::Persistent(Napi::Uint32Array::New(env, engine_->ringBlock()->size / 4, ringAb, 0));
    Napi::ArrayBuffer cntAb = External(env, engine_->counterBlock());
    napi_value big;
    napi_create_typedarray(env, napi_biguint64_array, kCounterCount, cntAb, 0, &big);
    counters_ = Napi::Persistent(Napi::Object(env, big));
  }

  ~NativeServer() override { Teardown(); }

 private:
  static Napi::ArrayBuffer External(Napi::Env env, Block* b) {
    b->ref();
    return Napi::ArrayBuffer::New(env, b->data, b->size, finalizeBlock, b);
  }

  /** IO thread. */
  static void Wake(void* arg) { uv_async_send(static_cast<NativeServer*>(arg)->async_); }

  static void OnAsync(uv_async_t* h) {
    auto* self = static_cast<NativeServer*>(h->data);
    if (self != nullptr && self->engine_ != nullptr) self->Drain();
  }

  /** JS thread: hand every ready record to JavaScript, one call per batch. */
  void Drain() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    // The wake flag stays set while we drain: records the IO thread publishes meanwhile are
    // taken by the next round without another uv_async_send (an eventfd write, an epoll turn
    // and a callback here for nothing). It is cleared only once the ring looks empty, then the
    // head is read again, so that no wake-up is lost.
    for (int round = 0; round < 8 && engine_ != nullptr; round++) {
      uint32_t t = engine_->tail();
      uint32_t h = engine_->head();
      if (t == h) {
        engine_->clearWake();
        h = engine_->head();
        if (t == h) return;
      }
      Napi::Value blocks = env.Undefined();
      Record* rec = engine_->records();
      uint32_t mask = engine_->mask();
      uint32_t nb = 0;
      for (uint32_t i = t; i != h; i++) {
        const Record& r = rec[i & mask];
        uint32_t type = r.w[0] & 0xFF;
        if (type == kRecBlock || (type == kRecFrameOwned && r.w[6] > 0)) {
          if (nb == 0) blocks = Napi::Array::New(env);
          Block* b = Engine::takeBlock(r);
          // The engine's reference for this record passes to the ArrayBuffer's finalizer.
          blocks.As<Napi::Array>().Set(nb++, Napi::ArrayBuffer::New(env, b->data, b->size, finalizeBlock, b));
        }
      }
      // The blocks of [t, h) belong to JavaScript now. If the callback (or a microtask it ran,
      // e.g. shutdown().then(dispose)) tears the engine down, Teardown hands the slots back
      // first, so that ~Engine does not drop those blocks a second time.
      batchHead_ = h;
      inBatch_ = true;
      onBatch_.MakeCallback(Value(), {Napi::Number::New(env, t), Napi::Number::New(env, h), blocks}, *context_);
      inBatch_ = false;
      if (engine_ != nullptr) engine_->release(h);
      if (env.IsExceptionPending()) {
        Napi::Error e = env.GetAndClearPendingException();
        // The wake flag is still set: come back for what is left (or to clear it).
        if (engine_ != nullptr) uv_async_send(async_);
        napi_fatal_exception(env, e.Value());
        return;
      }
    }
    // Eight rounds: continue on the next loop turn, after node's other work (the wake flag is
    // still set, so the IO thread sends no wake-up itself: this one is needed even if the
    // ring is empty now, to clear it).
    if (engine_ != nullptr) uv_async_send(async_);
  }

  Napi::Value Submit(const Napi::CallbackInfo& info) {
    if (engine_ == nullptr) return info.Env().Undefined();
    Napi::Uint8Array ops = info[0].As<Napi::Uint8Array>();
    size_t len = info[1].As<Napi::Number>().Uint32Value();
    if (len > ops.ByteLength()) len = ops.ByteLength();
    engine_->submit(ops.Data(), len);
    return info.Env().Undefined();
  }

  Napi::Value StopAccepting(const Napi::CallbackInfo& info) {
    if (engine_ != nullptr) engine_->stopAcceptingNow();
    return info.Env().Undefined();
  }

  /** Join the IO thread (it ended after a shutdown's DONE, or is stopped now) and free it all. */
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  Napi::Value Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_ != 0 ? port_ : (engine_ ? engine_->port() : 0)); }
  Napi::Value Records(const Napi::CallbackInfo& info) { return records_.IsEmpty() ? info.Env().Undefined() : records_.Value(); }
  Napi::Value Counters(const Napi::CallbackInfo& info) { return counters_.IsEmpty() ? info.Env().Undefined() : counters_.Value(); }

  void Teardown() {
    if (engine_ != nullptr) {
      port_ = engine_->port();
      if (inBatch_) engine_->release(batchHead_);  // torn down from inside a batch: see Drain
      inBatch_ = false;
      delete engine_;  // joins the IO thread; records nobody read release their blocks
      engine_ = nullptr;
    }
    if (async_ != nullptr) {
      async_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
    if (context_ != nullptr) {
      delete context_;
      context_ = nullptr;
    }
  }

  Engine* engine_ = nullptr;
  uv_async_t* async_ = nullptr;
  Napi::AsyncContext* context_ = nullptr;
  Napi::FunctionReference onBatch_;
  Napi::Reference<Napi::Uint32Array> records_;
  Napi::ObjectReference counters_;
  uint16_t port_ = 0;
  /** Drain is inside onBatch for the records up to batchHead_ (their blocks are JavaScript's). */
  bool inBatch_ = false;
  uint32_t batchHead_ = 0;
};

namespace {

Napi::Object constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  set("OP_SEND", kOpSend);
  set("OP_CLOSE", kOpClose);
  set("OP_PROTO_CLOSE", kOpProtoClose);
  set("OP_PAUSE", kOpPause);
  set("OP_STOP_ACCEPT", kOpStopAccept);
  set("OP_SHUTDOWN", kOpShutdown);
  set("OP_ABORT_SLOW", kOpAbortSlow);
  set("REC_BLOCK", kRecBlock);
  set("REC_FRAME", kRecFrame);
  set("REC_FRAME_OWNED", kRecFrameOwned);
  set("REC_OPEN", kRecOpen);
  set("REC_PROTO_ERROR", kRecProtoError);
  set("REC_CLOSE", kRecClose);
  set("REC_DONE", kRecDone);
  set("RECORD_WORDS", sizeof(Record) / 4);
  set("CNT_CONNECTIONS", kCntConnections);
  set("CNT_ACCEPTED", kCntAccepted);
  set("CNT_REJECTED", kCntRejected);
  set("CNT_CLOSED_IDLE", kCntClosedIdle);
  set("CNT_CLOSED_SLOW", kCntClosedSlow);
  set("CNT_BYTES_IN", kCntBytesIn);
  set("CNT_BYTES_OUT", kCntBytesOut);
  set("CNT_WRITES", kCntWrites);
  set("CNT_READS", kCntReads);
  set("CNT_FRAMES_IN", kCntFramesIn);
  set("CNT_PROTOCOL_ERRORS", kCntProtocolErrors);
  set("CNT_QUEUED_BYTES", kCntQueuedBytes);
  set("CNT_WAKEUPS", kCntWakeups);
  set("CNT_SUBMITS", kCntSubmits);
  set("CNT_ACCEPT_ERRORS", kCntAcceptErrors);
  set("CNT_THROTTLED", kCntThrottled);
  set("COUNTER_COUNT", kCounterCount);
  set("ARENA_BLOCK_SIZE", kArenaBlockSize);
  set("SEND_BLOCK_SIZE", kSendBlockSize);
  set("CLOSE_GRACE_MS", kCloseGraceMs);
  return c;
}

/** Describe a decode error as the native error frame does: { code, message } (a test compares). */
Napi::Value describeError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DecodeError e{};
  e.kind = static_cast<DecodeErrorKind>(info[0].ToNumber().Uint32Value());
  e.value = info[1].ToNumber().Uint32Value();
  e.limit = info[2].ToNumber().Uint32Value();
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", e.code());
  o.Set("message", e.describe());
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeServer", NativeServer::Initialize(env));
  exports.Set("constants", constants(env));
  exports.Set("describeError", Napi::Function::New(env, describeError, "describeError"));
  return exports;
}

}  // namespace
}  // namespace diocp

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return diocp::Init(env, exports); }

NODE_API_MODULE(diocp_native, InitModule)
