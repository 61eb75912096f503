/* plugin_serve: wires the handshake, the keymanager, the worker pool, the
 * gRPC server and the lifecycle together, and tears them down in order. */
#include "plugin/plugin.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "keymanager/keymanager.h"
#include "plugin/handshake.h"
#include "plugin/lifecycle.h"
#include "plugin/server.h"
#include "plugin/services.h"
#include "plugin/workers.h"

enum {
    WORKER_THREADS = 8,
    WORKER_QUEUE = 256,
    DRAIN_MS = 5000,  /* in-flight calls may finish within this */
    CANCEL_MS = 3000, /* then cancelled calls must be gone within this */
};

/* gRPC core's own log lines, as hclog JSON like ours. */
static void grpc_log_to_hclog(gpr_log_func_args *args)
{
    log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LOG_ERROR
                      : args->severity == GPR_LOG_SEVERITY_INFO ? LOG_INFO
                                                                : LOG_DEBUG;
    char source[300];
    snprintf(source, sizeof source, "%s:%d", args->file, args->line);
    log_write(level, "grpc", args->message, "source", source, LOG_END);
}

static void request_stop(void *arg, const char *reason) { server_request_stop(arg, reason); }

/* The listener is closed: nothing needs the socket any more, and a host that
 * SIGKILLs us during the drain must not find it left behind. */
static void remove_socket_dir(void *arg) { handshake_remove_socket_dir(arg); }

static bool versions_acceptable(void)
{
    const char *offered = getenv("PLUGIN_PROTOCOL_VERSIONS");
    if (handshake_version_offered(offered, HANDSHAKE_APP_VERSION))
        return true;
    log_write(LOG_ERROR, "plugin",
              "the host offers no plugin protocol version this plugin speaks (it speaks 1)",
              "offered", offered, LOG_END);
    return false;
}

static int announce(const handshake_socket *socket)
{
    char line[256];
    bool multiplex = getenv("PLUGIN_MULTIPLEX_GRPC") != NULL;
    if (handshake_format_line(line, sizeof line, socket->path, multiplex) < 0 ||
        handshake_announce(line) != 0) {
        log_write(LOG_ERROR, "plugin", "cannot write the handshake line on stdout", LOG_END);
        return -1;
    }
    log_write(LOG_INFO, "plugin", "plugin started", "socket", socket->path, LOG_END);
    return 0;
}

/* Runs the server to its end; returns the exit code. */
static int serve_on(const handshake_socket *socket, pid_t parent, km_manager *manager)
{
    worker_pool *pool = workers_new(WORKER_THREADS, WORKER_QUEUE);
    char error[300];
    server_methods methods = {.user = manager};
    methods.methods = services_methods(&methods.count);
    plugin_server *server =
        pool != NULL ? server_start(socket->path, &methods, pool, error, sizeof error) : NULL;
    if (server == NULL) {
        log_write(LOG_ERROR, "plugin", "cannot start the gRPC server", "error",
                  pool != NULL ? error : "no worker threads", LOG_END);
        workers_free(pool);
        return 1;
    }
    server_set_stop_hook(server, remove_socket_dir, (void *)socket);
    lifecycle *life = announce(socket) == 0 ? lifecycle_start(parent, request_stop, server) : NULL;
    if (life == NULL)
        server_request_stop(server, "start-up failed");
    if (server_run(server, DRAIN_MS, CANCEL_MS) != 0) {
        log_write(LOG_ERROR, "plugin", "calls did not finish after the stop; exiting anyway",
                  LOG_END);
        handshake_remove_socket_dir(socket);
        _exit(life != NULL ? 0 : 1);
    }
    lifecycle_end(life);
    workers_free(pool);
    km_shutdown(manager);
    server_free(server);
    return life != NULL ? 0 : 1;
}

int plugin_serve(void)
{
    pid_t parent = lifecycle_prepare();
    if (!versions_acceptable())
        return 1;
    handshake_socket socket = {{0}, {0}};
    char error[300];
    if (handshake_make_socket_dir(handshake_base_dir(), &socket, error, sizeof error) != 0) {
        log_write(LOG_ERROR, "plugin", "cannot create the socket directory", "error", error,
                  LOG_END);
        return 1;
    }
    gpr_set_log_function(grpc_log_to_hclog);
    grpc_init();
    km_manager *manager = km_new();
    int code = manager != NULL ? serve_on(&socket, parent, manager) : 1;
    km_free(manager);
    grpc_shutdown();
    handshake_remove_socket_dir(&socket);
    log_write(LOG_INFO, "plugin", "plugin stopped", LOG_END);
    return code;
}
