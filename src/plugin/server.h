/* The gRPC server on gRPC core's C API: one completion queue served by the
 * thread that calls server_run, call lifecycle and reference counts, and the
 * graceful stop (stop accepting, let in-flight calls finish within a bound,
 * cancel the rest, tear down in the order gRPC core requires). */
#ifndef KM_PLUGIN_SERVER_H
#define KM_PLUGIN_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "plugin/call.h"
#include "plugin/workers.h"

typedef struct plugin_server plugin_server;

/* What a server serves: its method table (count entries, kept by the caller
 * for the server's life) and the user pointer every handler reaches through
 * call_user. */
typedef struct {
    const method_def *methods;
    size_t count;
    void *user;
} server_methods;

/* Registers every method of the table, listens on the unix socket path and
 * starts. grpc_init must have been called. NULL with a reason in error. */
plugin_server *server_start(const char *socket_path, const server_methods *methods,
                            worker_pool *pool, char *error, size_t error_size);

/* hook(arg) runs once on the serving thread when the stop begins (after the
 * listener is closed), e.g. to remove the socket before a host's SIGKILL. */
void server_set_stop_hook(plugin_server *server, void (*hook)(void *arg), void *arg);

/* Begins the graceful stop; safe from any thread, any number of times. */
void server_request_stop(plugin_server *server, const char *reason);

/* Serves until a stop is requested and every call is finished. Returns 0, or
 * -1 when calls were still running drain_ms + cancel_ms after the stop. */
int server_run(plugin_server *server, int64_t drain_ms, int64_t cancel_ms);

/* Destroys the server and its completion queue (after server_run returned 0). */
void server_free(plugin_server *server);

#endif
