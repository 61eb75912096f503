/* Benchmark client on gRPC core's C API: N Health/Check calls ("plugin") to a
 * plugin's unix socket from T threads sharing one channel (one HTTP/2
 * connection, as SPIRE's grpc-go client does), so the round trip is measured
 * without a Python client's own overhead. Prints bench_run.h's JSON line:
 *   bench_health_client SOCKET_PATH CALLS THREADS */
#include "bench_run.h"
#include "grpc_unary.h"

#include <stdio.h>
#include <stdlib.h>

static const char HEALTH_CHECK[] = "/grpc.health.v1.Health/Check";
/* HealthCheckRequest{service: "plugin"}: field 1, length 6. */
static const char REQUEST[] = "\x0a\x06plugin";

static void *open_caller(void *channel)
{
    grpc_unary_caller *caller = malloc(sizeof *caller);
    if (caller != NULL)
        grpc_unary_caller_open(caller, channel);
    return caller;
}

static int health_check(void *caller)
{
    grpc_slice response;
    grpc_status_code status =
        grpc_unary_call(caller, HEALTH_CHECK, REQUEST, sizeof REQUEST - 1, &response);
    grpc_slice_unref(response);
    return status == GRPC_STATUS_OK ? 0 : -1;
}

static void close_caller(void *caller)
{
    grpc_unary_caller_close(caller);
    free(caller);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET_PATH CALLS THREADS\n", argv[0]);
        return 2;
    }
    bench_plan plan;
    bench_plan_init(&plan);
    plan.calls = atoi(argv[2]);
    plan.concurrency = atoi(argv[3]);
    const char *problem = bench_plan_problem(&plan);
    if (problem != NULL) {
        fprintf(stderr, "%s\n", problem);
        return 2;
    }
    grpc_init();
    grpc_channel *channel = grpc_unary_channel(argv[1]);
    int rc = 2;
    if (channel != NULL) {
        bench_client client = {open_caller, health_check, close_caller, channel};
        rc = bench_run(&client, &plan);
        grpc_channel_destroy(channel);
    }
    grpc_shutdown();
    return rc;
}
