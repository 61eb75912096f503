/* Test tool: builds a credential provider from flags and the process
 * environment, calls aws_credentials_get --times N on each of --threads T
 * threads, and prints one JSON line per call to stdout:
 *   {"source", "access_key_id", "secret_sha256", "has_session_token", "expiration"}
 * or {"error", "status"}. Printing the key id and a hash of the secret is fine
 * in a TEST tool; the plugin itself never does. Exit status 1 if any call failed.
 *
 * Like the plugin's main, it starts with secrets_protect_process(). Memory
 * check: --forbid-live REVERSED and --forbid-after-free REVERSED (repeatable)
 * name strings, reversed so that the probe never holds them, that must not be
 * found in any writable mapping of the process (read through /proc/self/mem)
 * once the calls are done (live) or once the provider is freed; the probe
 * then prints {"memory_check": "live"|"after_free", "found": [{"pattern": i,
 * "mapping": name}]}. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/secrets.h"

enum { MAX_PATTERNS = 8, SCAN_CHUNK = 1 << 20, MAX_MAPPING = 256 << 20 };

typedef struct {
    const char *reversed[MAX_PATTERNS];
    int count;
} pattern_list;

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
    hex_encode(digest, len, out);
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
        if (aws_credentials_get(job->provider, NULL, &c, &err) == 0) {
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

/* Whether the `len` bytes at data equal `reversed` read backwards. */
static bool matches_reversed(const unsigned char *data, const char *reversed, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        if (data[k] != (unsigned char)reversed[len - 1 - k])
            return false;
    }
    return true;
}

static void scan_chunk(const unsigned char *chunk, size_t len, const pattern_list *patterns,
                       const char *mapping, json_t *found)
{
    for (int p = 0; p < patterns->count; p++) {
        size_t plen = strlen(patterns->reversed[p]);
        for (size_t i = 0; plen > 0 && i + plen <= len; i++) {
            if (matches_reversed(chunk + i, patterns->reversed[p], plen)) {
                json_array_append_new(found,
                                      json_pack("{s:i, s:s}", "pattern", p, "mapping", mapping));
                break;
            }
        }
    }
}

/* Scans one mapping [start, end) through /proc/self/mem (no sanitizer sees
 * the reads), chunk by chunk with an overlap for patterns across chunks. */
static void scan_mapping(int mem, uint64_t start, uint64_t end, unsigned char *buffer,
                         const pattern_list *patterns, const char *mapping, json_t *found)
{
    size_t overlap = 0;
    for (int p = 0; p < patterns->count; p++) {
        size_t plen = strlen(patterns->reversed[p]);
        overlap = plen > overlap ? plen : overlap;
    }
    for (uint64_t at = start; at < end; at += SCAN_CHUNK) {
        size_t want = (size_t)(end - at < SCAN_CHUNK + overlap ? end - at : SCAN_CHUNK + overlap);
        ssize_t got = pread(mem, buffer, want, (off_t)at);
        if (got > 0)
            scan_chunk(buffer, (size_t)got, patterns, mapping, found);
    }
}

static void memory_check(const char *when, const pattern_list *patterns)
{
    if (patterns->count == 0)
        return;
    json_t *found = json_array();
    size_t buffer_size = SCAN_CHUNK + 4096;
    unsigned char *buffer =
        mmap(NULL, buffer_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FILE *maps = fopen("/proc/self/maps", "re");
    int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    char line[512];
    while (buffer != MAP_FAILED && maps != NULL && mem >= 0 && fgets(line, sizeof line, maps)) {
        uint64_t start, end;
        char perms[8] = "", name[256] = "";
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %255s", &start, &end, perms,
                   name) < 3)
            continue;
        bool own_buffer = start <= (uintptr_t)buffer && (uintptr_t)buffer < end;
        if (perms[0] != 'r' || perms[1] != 'w' || end - start > MAX_MAPPING || own_buffer ||
            strcmp(name, "[vvar]") == 0 || strcmp(name, "[vsyscall]") == 0)
            continue;
        scan_mapping(mem, start, end, buffer, patterns, name[0] ? name : "[anonymous]", found);
    }
    if (maps != NULL)
        fclose(maps);
    if (mem >= 0)
        close(mem);
    if (buffer != MAP_FAILED)
        munmap(buffer, buffer_size);
    print_json(json_pack("{s:s, s:o}", "memory_check", when, "found", found));
}

static void add_pattern(pattern_list *list, const char *reversed)
{
    if (list->count < MAX_PATTERNS)
        list->reversed[list->count++] = reversed;
}

static void usage(void)
{
    fprintf(stderr, "usage: aws_credprobe [--access-key K] [--secret-key S] [--region R]\n"
                    "       [--sts-endpoint URL] [--times N] [--threads T]\n"
                    "       [--log-level L] [--process-timeout-ms MS]\n"
                    "       [--forbid-live REVERSED]... [--forbid-after-free REVERSED]...\n");
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
        {"forbid-live", required_argument, NULL, 'L'},
        {"forbid-after-free", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    secrets_protect_process();
    pattern_list live = {0}, after_free = {0};
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
        case 'L':
            add_pattern(&live, optarg);
            break;
        case 'F':
            add_pattern(&after_free, optarg);
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
    memory_check("live", &live);
    aws_credentials_provider_free(provider);
    memory_check("after_free", &after_free);
    return failures == 0 ? 0 : 1;
}
