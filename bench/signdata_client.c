/* Benchmark client on gRPC core's C API: N KeyManager SignData calls to a
 * configured plugin's unix socket at concurrency T (T threads sharing one
 * channel, i.e. one HTTP/2 connection, as SPIRE's grpc-go client does). The
 * plugin must already be set up (go-plugin handshake, Configure, GenerateKey):
 * bench/bench_signdata.py does that through tests/pluginhost/host.py and then
 * runs this client on the same socket. Every answer is unpacked and must hold
 * a signature and a key fingerprint. Prints bench_run.h's JSON line.
 *
 *   bench_signdata_client --socket PATH --key-id ID [--digest-hex HEX]
 *       --calls N --concurrency T [--warmup N] [--pid NAME=PID]...
 *       [--at-start CMD] [--at-end CMD]
 *
 * The digest defaults to SHA-256("bench"); it is signed as a SHA-256 digest. */
#include "bench_run.h"
#include "grpc_unary.h"

#include "spire/plugin/server/keymanager/v1/keymanager.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SIGN_DATA[] = "/spire.plugin.server.keymanager.v1.KeyManager/SignData";
static const char DEFAULT_DIGEST[] =
    "1b32c28cb38c05480eccc1bd60ff97029b57a05c96718b96dad7e9d84894f549";

typedef struct {
    grpc_channel *channel;
    uint8_t *request; /* packed SignDataRequest, the same for every call */
    size_t request_len;
} sign_job;

/* One thread's state: its caller (own completion queue) and the job. */
typedef struct {
    grpc_unary_caller caller;
    const sign_job *job;
} sign_thread;

static void *open_thread(void *shared)
{
    sign_thread *thread = malloc(sizeof *thread);
    if (thread == NULL)
        return NULL;
    thread->job = shared;
    grpc_unary_caller_open(&thread->caller, thread->job->channel);
    return thread;
}

static void close_thread(void *state)
{
    sign_thread *thread = state;
    grpc_unary_caller_close(&thread->caller);
    free(thread);
}

static int answer_is_signature(grpc_slice response)
{
    Spire__Plugin__Server__Keymanager__V1__SignDataResponse *answer =
        spire__plugin__server__keymanager__v1__sign_data_response__unpack(
            NULL, GRPC_SLICE_LENGTH(response), GRPC_SLICE_START_PTR(response));
    int ok = answer != NULL && answer->signature.len > 0 && answer->key_fingerprint[0] != '\0';
    if (answer != NULL)
        spire__plugin__server__keymanager__v1__sign_data_response__free_unpacked(answer, NULL);
    return ok;
}

static int sign_data(void *state)
{
    const sign_thread *thread = state;
    grpc_slice response;
    grpc_status_code status = grpc_unary_call(&thread->caller, SIGN_DATA, thread->job->request,
                                              thread->job->request_len, &response);
    int ok = status == GRPC_STATUS_OK && answer_is_signature(response);
    grpc_slice_unref(response);
    return ok ? 0 : -1;
}

static int parse_hex(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1)
            return -1;
        out[i] = (uint8_t)value;
    }
    *len = n / 2;
    return 0;
}

/* The packed request; NULL when out of memory. */
static uint8_t *pack_request(const char *key_id, const uint8_t *digest, size_t digest_len,
                             size_t *len)
{
    Spire__Plugin__Server__Keymanager__V1__SignDataRequest request =
        SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__SIGN_DATA_REQUEST__INIT;
    request.key_id = (char *)key_id;
    request.data.data = (uint8_t *)digest;
    request.data.len = digest_len;
    request.signer_opts_case =
        SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__SIGN_DATA_REQUEST__SIGNER_OPTS_HASH_ALGORITHM;
    request.hash_algorithm = SPIRE__PLUGIN__SERVER__KEYMANAGER__V1__HASH_ALGORITHM__SHA256;
    *len = spire__plugin__server__keymanager__v1__sign_data_request__get_packed_size(&request);
    uint8_t *packed = malloc(*len);
    if (packed != NULL)
        spire__plugin__server__keymanager__v1__sign_data_request__pack(&request, packed);
    return packed;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s --socket PATH --key-id ID [--digest-hex HEX] --calls N "
            "--concurrency T [--warmup N] [--pid NAME=PID]... [--at-start CMD] [--at-end CMD]\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    bench_plan plan;
    bench_plan_init(&plan);
    const char *socket_path = NULL, *key_id = NULL, *digest_hex = DEFAULT_DIGEST;
    for (int i = 1; i < argc; i++) {
        int taken = bench_plan_option(&plan, argc, argv, &i);
        if (taken < 0)
            return usage(argv[0]);
        if (taken > 0)
            continue;
        const char **value = strcmp(argv[i], "--socket") == 0       ? &socket_path
                             : strcmp(argv[i], "--key-id") == 0     ? &key_id
                             : strcmp(argv[i], "--digest-hex") == 0 ? &digest_hex
                                                                    : NULL;
        if (value == NULL || i + 1 >= argc)
            return usage(argv[0]);
        *value = argv[++i];
    }
    uint8_t digest[64];
    size_t digest_len;
    const char *problem = bench_plan_problem(&plan);
    if (problem != NULL || socket_path == NULL || key_id == NULL ||
        parse_hex(digest_hex, digest, sizeof digest, &digest_len) != 0) {
        if (problem != NULL)
            fprintf(stderr, "%s\n", problem);
        return usage(argv[0]);
    }
    sign_job job = {.request = pack_request(key_id, digest, digest_len, &job.request_len)};
    if (job.request == NULL)
        return 2;
    grpc_init();
    job.channel = grpc_unary_channel(socket_path);
    int rc = 2;
    if (job.channel != NULL) {
        bench_client client = {open_thread, sign_data, close_thread, &job};
        rc = bench_run(&client, &plan);
        grpc_channel_destroy(job.channel);
    }
    grpc_shutdown();
    free(job.request);
    return rc;
}
