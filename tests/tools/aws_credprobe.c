/* Test tool: builds a credential provider from flags and the process
 * environment, calls aws_credentials_get --times N on each of --threads T
 * threads, and prints one JSON line per call to stdout:
 *   {"source", "access_key_id", "secret_sha256", "has_session_token", "expiration"}
 * or {"error", "status"}. Printing the key id and a hash of the secret is fine
 * in a TEST tool; the plugin itself never does. Exit status 1 if any call failed. */
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "common/log.h"

typedef struct {
    aws_credentials_provider *provider;
    int times;
    int failures;
} probe_job;

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void sha256_hex(const char *text, char out[65])
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static json_t *describe(const aws_credentials *c)
{
    char hash[65];
    sha256_hex(c->secret_access_key, hash);
    return json_pack("{s:s, s:s, s:s, s:b, s:I}", "source", c->source, "access_key_id",
                     c->access_key_id, "secret_sha256", hash, "has_session_token",
                     c->session_token[0] != '\0', "expiration", (json_int_t)c->expiration);
}

static void print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    pthread_mutex_lock(&print_lock);
    printf("%s\n", text);
    fflush(stdout);
    pthread_mutex_unlock(&print_lock);
    free(text);
    json_decref(value);
}

static void *run_job(void *arg)
{
    probe_job *job = arg;
    for (int i = 0; i < job->times; i++) {
        aws_credentials c;
        aws_error err;
        aws_error_clear(&err);
        if (aws_credentials_get(job->provider, &c, &err) == 0) {
            print_json(describe(&c));
        } else {
            job->failures++;
            print_json(json_pack("{s:s, s:s, s:s}", "error", err.message, "status",
                                 aws_status_name(err.status), "code", err.code));
        }
        aws_credentials_clear(&c);
    }
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: aws_credprobe [--access-key K] [--secret-key S] [--region R]\n"
                    "       [--sts-endpoint URL] [--times N] [--threads T]\n"
                    "       [--log-level L] [--process-timeout-ms MS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key", required_argument, NULL, 's'},
        {"region", required_argument, NULL, 'r'},
        {"sts-endpoint", required_argument, NULL, 'e'},
        {"times", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"process-timeout-ms", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    aws_credentials_options opts = {0};
    int times = 1, threads = 1, opt;
    log_level level = LOG_INFO;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'a':
            opts.access_key_id = optarg;
            break;
        case 's':
            opts.secret_access_key = optarg;
            break;
        case 'r':
            opts.region = optarg;
            break;
        case 'e':
            opts.sts_endpoint = optarg;
            break;
        case 'n':
            times = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'p':
            opts.process_timeout_ms = atoi(optarg);
            break;
        case 'l':
            if (!log_parse_level(optarg, &level))
                usage();
            break;
        default:
            usage();
        }
    }
    if (times < 1 || threads < 1 || threads > 256)
        usage();
    log_set_level(level);
    aws_credentials_provider *provider = aws_credentials_provider_new(&opts);
    if (provider == NULL) {
        fprintf(stderr, "aws_credprobe: cannot create the provider\n");
        return 1;
    }
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    probe_job *jobs = calloc((size_t)threads, sizeof *jobs);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (probe_job){.provider = provider, .times = times};
        pthread_create(&tids[i], NULL, run_job, &jobs[i]);
    }
    int failures = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        failures += jobs[i].failures;
    }
    free(tids);
    free(jobs);
    aws_credentials_provider_free(provider);
    return failures == 0 ? 0 : 1;
}
