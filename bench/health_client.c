/* Benchmark client on gRPC core's C API: N Health/Check calls ("plugin") to a
 * plugin's unix socket from T threads sharing one channel (one HTTP/2
 * connection, as SPIRE's grpc-go client does), so the round trip is measured
 * without a Python client's own overhead. Prints one JSON line:
 *   bench_health_client SOCKET_PATH CALLS THREADS */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char HEALTH_CHECK[] = "/grpc.health.v1.Health/Check";
/* HealthCheckRequest{service: "plugin"}: field 1, length 6. */
static const char REQUEST[] = "\x0a\x06plugin";

typedef struct {
    grpc_channel *channel;
    int calls;
    int64_t *latencies_ns; /* this thread's slice */
    int failures;
} worker;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* One unary call; returns 0 when it ended with status OK. */
static int health_check(grpc_channel *channel, grpc_completion_queue *cq)
{
    grpc_slice method = grpc_slice_from_static_string(HEALTH_CHECK);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(10, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, deadline, NULL);
    grpc_slice payload = grpc_slice_from_static_buffer(REQUEST, sizeof REQUEST - 1);
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_byte_buffer *response = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int ok = grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK;
    if (ok) {
        grpc_event event = grpc_completion_queue_pluck(cq, call, deadline, NULL);
        ok = event.type == GRPC_OP_COMPLETE && event.success;
        grpc_slice_unref(details);
    }
    grpc_byte_buffer_destroy(request);
    if (response != NULL)
        grpc_byte_buffer_destroy(response);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    return ok && status == GRPC_STATUS_OK ? 0 : -1;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    for (int i = 0; i < w->calls; i++) {
        int64_t started = now_ns();
        if (health_check(w->channel, cq) != 0)
            w->failures++;
        w->latencies_ns[i] = now_ns() - started;
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SOCKET_PATH CALLS THREADS\n", argv[0]);
        return 2;
    }
    int per_thread = atoi(argv[2]), threads = atoi(argv[3]);
    if (per_thread <= 0 || threads <= 0 || threads > 256) {
        fprintf(stderr, "CALLS and THREADS must be positive (THREADS at most 256)\n");
        return 2;
    }
    per_thread /= threads;
    char target[256];
    snprintf(target, sizeof target, "unix:%s", argv[1]);
    grpc_init();
    grpc_channel_credentials *credentials = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, credentials, NULL);
    grpc_channel_credentials_release(credentials);

    int64_t *latencies = calloc((size_t)(per_thread * threads), sizeof *latencies);
    worker *workers = calloc((size_t)threads, sizeof *workers);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    /* Warm-up: connect and settle before measuring. */
    worker warm = {.channel = channel, .calls = 200, .latencies_ns = calloc(200, sizeof(int64_t))};
    run_worker(&warm);
    free(warm.latencies_ns);

    int64_t started = now_ns();
    for (int t = 0; t < threads; t++) {
        workers[t] = (worker){.channel = channel,
                              .calls = per_thread,
                              .latencies_ns = latencies + (size_t)t * (size_t)per_thread};
        pthread_create(&ids[t], NULL, run_worker, &workers[t]);
    }
    int failures = warm.failures;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += workers[t].failures;
    }
    double seconds = (double)(now_ns() - started) / 1e9;
    size_t total = (size_t)(per_thread * threads);
    qsort(latencies, total, sizeof *latencies, by_value);
    printf("{\"calls\": %zu, \"threads\": %d, \"failures\": %d, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"calls_per_s\": %.0f}\n",
           total, threads, failures, (double)latencies[total / 2] / 1e3,
           (double)latencies[total * 99 / 100] / 1e3, (double)total / seconds);
    free(latencies);
    free(workers);
    free(ids);
    grpc_channel_destroy(channel);
    grpc_shutdown();
    return failures == 0 ? 0 : 1;
}
