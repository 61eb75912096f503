/* The call object handlers see: a plain function per method receives the call
 * and the request bytes, and answers exactly once with call_reply or
 * call_fail, from whichever thread it runs on. A METHOD_ASYNC handler that
 * answers after it returns takes a reference with call_hold first and drops
 * it with call_release after its answer. Internal to src/plugin. */
#ifndef KM_PLUGIN_CALL_H
#define KM_PLUGIN_CALL_H

#include <protobuf-c/protobuf-c.h>

#include "keymanager/keymanager.h"

typedef struct call_context call_context;
typedef struct plugin_server plugin_server;

/* One more reference to the call (any thread); call_release drops it, and
 * the last one ends the call. */
void call_hold(call_context *ctx);
void call_release(call_context *ctx);

/* Answers OK with message (packed here; the caller keeps ownership). */
void call_reply(call_context *ctx, const ProtobufCMessage *message);

/* Answers with a gRPC status code (not OK) and a message for the client. */
void call_fail(call_context *ctx, grpc_status_code code, const char *message);

/* The call's deadline (CLOCK_MONOTONIC ms) and cancellation flag. */
const km_call *call_km(const call_context *ctx);

/* The method's short name ("SignData"), for messages. */
const char *call_method_name(const call_context *ctx);

plugin_server *call_server(const call_context *ctx);

#endif
