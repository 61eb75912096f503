/* aws_probe: drives the typed KMS and tagging clients (src/aws/kms.h,
 * src/aws/tagging.h) against a real endpoint (the test emulator) for the
 * Python integration tests. Prints one JSON object on stdout; exit status 1 on
 * failure. Never prints secrets.
 *
 *   aws_probe [--endpoint URL] [--region R] [--access-key A --secret-key S]
 *             [--max-attempts N] [--timeout-ms N] [--connect-timeout-ms N]
 *             [--deadline-ms N] [--cancel-after-ms N] [--pool-size N]
 *             [--ca-bundle F] [--limit N] [--marker M] [--all] [--threads T]
 *             [--resource-type T] [--per-page N] [--token T] [--log-level debug]
 *             OP [args...]
 *   (no --region: AWS_REGION, AWS_DEFAULT_REGION or the shared config profile)
 *   OP: create-key SPEC [DESC] | describe-key ID | get-public-key ID |
 *       sign ID ALG HEXDIGEST | create-alias NAME KEYID | update-alias NAME KEYID |
 *       delete-alias NAME | list-aliases [KEYID] | list-keys |
 *       schedule-key-deletion ID DAYS | tag-resource ID K V | untag-resource ID K... |
 *       list-resource-tags ID | get-resources [KEY[=V1,V2...]]... (tag filters;
 *       --resource-type, --per-page, --token, --all) | caller-identity |
 *       client-info (what the client resolved; no request) |
 *       repeat N OP [args...]   (latency percentiles and connection reuse) */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/aws_json.h"
#include "aws/http.h"
#include "aws/kms.h"
#include "aws/tagging.h"
#include "common/clock.h"
#include "common/log.h"

typedef struct {
    aws_client_config config;
    int deadline_ms;
    int cancel_after_ms;
    int limit;
    const char *marker;
    bool all_pages;
    int threads;
    const char *resource_type; /* get-resources: one ResourceTypeFilters entry */
    int per_page;              /* get-resources: ResourcesPerPage */
    const char *token;         /* get-resources: the first PaginationToken */
} probe_options;

typedef struct {
    kms_client *client;
    const probe_options *options;
    atomic_bool cancelled;
} probe;

static void usage(void)
{
    fprintf(stderr, "usage: aws_probe [--endpoint URL] [--region R] [options] OP [args...]\n");
    exit(2);
}

static json_t *error_json(const aws_error *err)
{
    return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i}", "status", aws_status_name(err->status),
                     "http_status", err->http_status, "code", err->code, "message", err->message,
                     "request_id", err->request_id, "attempts", err->attempts);
}

static json_t *metadata_json(const kms_key_metadata *m)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:f, s:s}", "key_id", m->key_id, "arn", m->arn,
                     "key_state", m->key_state, "enabled", m->enabled, "description",
                     m->description, "key_manager", m->key_manager, "creation_date",
                     m->creation_date, "key_spec", kms_key_spec_name(m->key_spec));
}

static int hex_decode(const char *hex, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t len = strlen(hex);
    if (len % 2 != 0 || len / 2 > out_size)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1)
            return -1;
        out[i] = (uint8_t)value;
    }
    *out_len = len / 2;
    return 0;
}

static aws_call_ctx call_ctx(probe *p)
{
    aws_call_ctx ctx = {.cancelled = &p->cancelled};
    if (p->options->deadline_ms > 0)
        ctx.deadline_ms = clock_monotonic_ms() + p->options->deadline_ms;
    return ctx;
}

static bool need(int argc, int count)
{
    if (argc < count) {
        fprintf(stderr, "aws_probe: missing arguments for the operation\n");
        return false;
    }
    return true;
}

static int op_create_key(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 2))
        return -2;
    kms_tag tag = {"spire-probe", "yes"};
    kms_create_key_input input = {.key_spec = kms_key_spec_parse(argv[1]),
                                  .description = argc > 2 ? argv[2] : NULL,
                                  .tags = &tag,
                                  .tag_count = 1};
    kms_key_metadata m;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_create_key(p->client, &ctx, &input, &m, err) != 0)
        return -1;
    *result = metadata_json(&m);
    return 0;
}

static int op_describe_key(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 2))
        return -2;
    kms_key_metadata m;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_describe_key(p->client, &ctx, argv[1], &m, err) != 0)
        return -1;
    *result = metadata_json(&m);
    return 0;
}

static int op_get_public_key(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 2))
        return -2;
    kms_public_key key;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_get_public_key(p->client, &ctx, argv[1], &key, err) != 0)
        return -1;
    char *der = aws_base64_encode(key.der, key.der_len);
    *result = json_pack("{s:s, s:s, s:i, s:s}", "key_id", key.key_id, "key_spec",
                        kms_key_spec_name(key.key_spec), "der_len", (int)key.der_len, "der_b64",
                        der ? der : "");
    free(der);
    kms_public_key_clear(&key);
    return 0;
}

static int op_sign(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    uint8_t digest[128];
    size_t digest_len = 0;
    if (!need(argc, 4))
        return -2;
    if (hex_decode(argv[3], digest, sizeof digest, &digest_len) != 0) {
        fprintf(stderr, "aws_probe: HEXDIGEST is not hex\n");
        return -2;
    }
    uint8_t *signature = NULL;
    size_t signature_len = 0;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_sign(p->client, &ctx, argv[1], digest, digest_len, argv[2], &signature, &signature_len,
                 err) != 0)
        return -1;
    char *encoded = aws_base64_encode(signature, signature_len);
    *result = json_pack("{s:i, s:s}", "signature_len", (int)signature_len, "signature_b64",
                        encoded ? encoded : "");
    free(encoded);
    free(signature);
    return 0;
}

static int op_alias(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    aws_call_ctx ctx = call_ctx(p);
    int rc;
    if (strcmp(argv[0], "delete-alias") == 0) {
        if (!need(argc, 2))
            return -2;
        rc = kms_delete_alias(p->client, &ctx, argv[1], err);
    } else {
        if (!need(argc, 3))
            return -2;
        rc = strcmp(argv[0], "create-alias") == 0
                 ? kms_create_alias(p->client, &ctx, argv[1], argv[2], err)
                 : kms_update_alias(p->client, &ctx, argv[1], argv[2], err);
    }
    if (rc == 0)
        *result = json_object();
    return rc;
}

static json_t *alias_json(const kms_alias *a)
{
    return json_pack("{s:s, s:s, s:s, s:f, s:f}", "alias_name", a->alias_name, "alias_arn",
                     a->alias_arn, "target_key_id", a->target_key_id, "creation_date",
                     a->creation_date, "last_updated_date", a->last_updated_date);
}

static int op_list_aliases(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    const char *key_id = argc > 1 ? argv[1] : NULL;
    json_t *items = json_array();
    char marker[1024];
    snprintf(marker, sizeof marker, "%s", p->options->marker ? p->options->marker : "");
    int pages = 0;
    bool truncated;
    do {
        kms_alias_page page;
        aws_call_ctx ctx = call_ctx(p);
        if (kms_list_aliases(p->client, &ctx, key_id, marker, p->options->limit, &page, err) != 0) {
            json_decref(items);
            return -1;
        }
        pages++;
        for (size_t i = 0; i < page.count; i++)
            json_array_append_new(items, alias_json(&page.aliases[i]));
        truncated = page.truncated;
        snprintf(marker, sizeof marker, "%s", page.next_marker);
        kms_alias_page_clear(&page);
    } while (truncated && p->options->all_pages);
    *result = json_pack("{s:o, s:b, s:s, s:i}", "aliases", items, "truncated", truncated,
                        "next_marker", marker, "pages", pages);
    return 0;
}

static int op_list_keys(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    (void)argc;
    (void)argv;
    json_t *items = json_array();
    char marker[1024];
    snprintf(marker, sizeof marker, "%s", p->options->marker ? p->options->marker : "");
    int pages = 0;
    bool truncated;
    do {
        kms_key_page page;
        aws_call_ctx ctx = call_ctx(p);
        if (kms_list_keys(p->client, &ctx, marker, p->options->limit, &page, err) != 0) {
            json_decref(items);
            return -1;
        }
        pages++;
        for (size_t i = 0; i < page.count; i++)
            json_array_append_new(items, json_pack("{s:s, s:s}", "key_id", page.keys[i].key_id,
                                                   "arn", page.keys[i].arn));
        truncated = page.truncated;
        snprintf(marker, sizeof marker, "%s", page.next_marker);
        kms_key_page_clear(&page);
    } while (truncated && p->options->all_pages);
    *result = json_pack("{s:o, s:b, s:s, s:i}", "keys", items, "truncated", truncated,
                        "next_marker", marker, "pages", pages);
    return 0;
}

static int op_schedule_deletion(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 3))
        return -2;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_schedule_key_deletion(p->client, &ctx, argv[1], atoi(argv[2]), err) != 0)
        return -1;
    *result = json_object();
    return 0;
}

static int op_tag_resource(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 4))
        return -2;
    kms_tag tag = {argv[2], argv[3]};
    aws_call_ctx ctx = call_ctx(p);
    if (kms_tag_resource(p->client, &ctx, argv[1], &tag, 1, err) != 0)
        return -1;
    *result = json_object();
    return 0;
}

static int op_untag_resource(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 3))
        return -2;
    aws_call_ctx ctx = call_ctx(p);
    if (kms_untag_resource(p->client, &ctx, argv[1], (const char *const *)argv + 2,
                           (size_t)argc - 2, err) != 0)
        return -1;
    *result = json_object();
    return 0;
}

static json_t *tags_json(const aws_tag_set *tags)
{
    json_t *object = json_object();
    for (size_t i = 0; i < tags->count; i++)
        json_object_set_new(object, tags->items[i].key, json_string(tags->items[i].value));
    return object;
}

static int op_list_resource_tags(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 2))
        return -2;
    json_t *tags = json_object();
    char marker[1024];
    snprintf(marker, sizeof marker, "%s", p->options->marker ? p->options->marker : "");
    int pages = 0;
    bool truncated;
    do {
        kms_tag_page page;
        aws_call_ctx ctx = call_ctx(p);
        if (kms_list_resource_tags(p->client, &ctx, argv[1], marker, p->options->limit, &page,
                                   err) != 0) {
            json_decref(tags);
            return -1;
        }
        pages++;
        json_t *page_tags = tags_json(&page.tags);
        json_object_update(tags, page_tags);
        json_decref(page_tags);
        truncated = page.truncated;
        snprintf(marker, sizeof marker, "%s", page.next_marker);
        kms_tag_page_clear(&page);
    } while (truncated && p->options->all_pages);
    *result = json_pack("{s:o, s:b, s:s, s:i}", "tags", tags, "truncated", truncated, "next_marker",
                        marker, "pages", pages);
    return 0;
}

enum { MAX_PROBE_FILTERS = 8, MAX_PROBE_VALUES = 8 };

/* "KEY" (any value) or "KEY=V1,V2" into filter; text is modified in place. */
static bool parse_filter(char *text, tagging_tag_filter *filter, const char **values)
{
    char *equals = strchr(text, '=');
    filter->key = text;
    filter->values = values;
    filter->value_count = 0;
    if (equals == NULL)
        return true;
    *equals = '\0';
    char *save = NULL;
    for (char *value = strtok_r(equals + 1, ",", &save); value != NULL;
         value = strtok_r(NULL, ",", &save)) {
        if (filter->value_count == MAX_PROBE_VALUES)
            return false;
        values[filter->value_count++] = value;
    }
    return true;
}

static int op_get_resources(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    tagging_tag_filter filters[MAX_PROBE_FILTERS];
    const char *values[MAX_PROBE_FILTERS][MAX_PROBE_VALUES];
    size_t filter_count = (size_t)argc - 1;
    if (filter_count > MAX_PROBE_FILTERS)
        return -2;
    for (size_t i = 0; i < filter_count; i++) {
        if (!parse_filter(argv[i + 1], &filters[i], values[i]))
            return -2;
    }
    const char *types[] = {p->options->resource_type};
    tagging_get_resources_input input = {
        .resource_types = types,
        .resource_type_count = p->options->resource_type ? 1 : 0,
        .tag_filters = filters,
        .tag_filter_count = filter_count,
        .resources_per_page = p->options->per_page,
    };
    json_t *items = json_array();
    char token[TAGGING_MAX_TOKEN + 1];
    snprintf(token, sizeof token, "%s", p->options->token ? p->options->token : "");
    int pages = 0;
    do {
        tagging_resource_page page;
        aws_call_ctx ctx = call_ctx(p);
        input.pagination_token = token;
        if (tagging_get_resources(p->client, &ctx, &input, &page, err) != 0) {
            json_decref(items);
            return -1;
        }
        pages++;
        for (size_t i = 0; i < page.count; i++)
            json_array_append_new(items, json_pack("{s:s, s:o}", "arn", page.resources[i].arn,
                                                   "tags", tags_json(&page.resources[i].tags)));
        snprintf(token, sizeof token, "%s", page.next_token);
        tagging_resource_page_clear(&page);
    } while (token[0] != '\0' && p->options->all_pages);
    *result = json_pack("{s:o, s:s, s:i}", "resources", items, "next_token", token, "pages", pages);
    return 0;
}

static int op_client_info(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    (void)argc;
    (void)argv;
    (void)err;
    kms_client_info info;
    kms_client_get_info(p->client, &info);
    *result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "region", info.region,
                        "region_source", info.region_source, "kms_endpoint", info.kms_endpoint,
                        "sts_endpoint", info.sts_endpoint, "tagging_endpoint",
                        info.tagging_endpoint, "ca_bundle", info.ca_bundle, "ca_bundle_source",
                        info.ca_bundle_source, "max_attempts", info.max_attempts,
                        "max_attempts_source", info.max_attempts_source);
    return 0;
}

static int op_caller_identity(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    (void)argc;
    (void)argv;
    sts_identity id;
    aws_call_ctx ctx = call_ctx(p);
    if (sts_get_caller_identity(p->client, &ctx, &id, err) != 0)
        return -1;
    *result =
        json_pack("{s:s, s:s, s:s}", "account", id.account, "arn", id.arn, "user_id", id.user_id);
    return 0;
}

typedef int (*op_fn)(probe *p, int argc, char **argv, json_t **result, aws_error *err);

static op_fn find_op(const char *name)
{
    static const struct {
        const char *name;
        op_fn fn;
    } ops[] = {
        {"create-key", op_create_key},
        {"describe-key", op_describe_key},
        {"get-public-key", op_get_public_key},
        {"sign", op_sign},
        {"create-alias", op_alias},
        {"update-alias", op_alias},
        {"delete-alias", op_alias},
        {"list-aliases", op_list_aliases},
        {"list-keys", op_list_keys},
        {"schedule-key-deletion", op_schedule_deletion},
        {"tag-resource", op_tag_resource},
        {"untag-resource", op_untag_resource},
        {"list-resource-tags", op_list_resource_tags},
        {"get-resources", op_get_resources},
        {"client-info", op_client_info},
        {"caller-identity", op_caller_identity},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(name, ops[i].name) == 0)
            return ops[i].fn;
    }
    return NULL;
}

/* --- repeat: latency and connection reuse --------------------------------------- */

typedef struct {
    probe *p;
    op_fn fn;
    int argc;
    char **argv;
    int count;
    double *latencies_ms;
    int failures;
    int max_attempts_seen;
    aws_error last_error;
} repeat_worker;

static double now_ms(void) { return (double)clock_monotonic_us() / 1000.0; }

static void *repeat_run(void *arg)
{
    repeat_worker *w = arg;
    for (int i = 0; i < w->count; i++) {
        json_t *result = NULL;
        aws_error err;
        aws_error_clear(&err);
        double start = now_ms();
        if (w->fn(w->p, w->argc, w->argv, &result, &err) != 0) {
            w->failures++;
            w->last_error = err;
        }
        w->latencies_ms[i] = now_ms() - start;
        if (err.attempts > w->max_attempts_seen)
            w->max_attempts_seen = err.attempts;
        json_decref(result);
    }
    return NULL;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double q)
{
    int index = (int)(q * (n - 1) + 0.5);
    return sorted[index];
}

static int run_repeat(probe *p, int argc, char **argv, json_t **result, aws_error *err)
{
    if (!need(argc, 3))
        return -2;
    int total = atoi(argv[1]);
    op_fn fn = find_op(argv[2]);
    int threads = p->options->threads > 0 ? p->options->threads : 1;
    if (total <= 0 || fn == NULL || total % threads != 0) {
        fprintf(stderr, "aws_probe: repeat N OP (N > 0, a multiple of --threads)\n");
        return -2;
    }
    double *latencies = calloc((size_t)total, sizeof *latencies);
    repeat_worker *workers = calloc((size_t)threads, sizeof *workers);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    double start = now_ms();
    for (int t = 0; t < threads; t++) {
        workers[t] = (repeat_worker){.p = p,
                                     .fn = fn,
                                     .argc = argc - 2,
                                     .argv = argv + 2,
                                     .count = total / threads,
                                     .latencies_ms = latencies + t * (total / threads)};
        pthread_create(&ids[t], NULL, repeat_run, &workers[t]);
    }
    int failures = 0, max_attempts = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += workers[t].failures;
        if (workers[t].max_attempts_seen > max_attempts)
            max_attempts = workers[t].max_attempts_seen;
        if (workers[t].failures > 0)
            *err = workers[t].last_error;
    }
    double elapsed = now_ms() - start;
    qsort(latencies, (size_t)total, sizeof *latencies, compare_double);
    *result =
        json_pack("{s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "count", total, "threads",
                  threads, "failures", failures, "max_attempts", max_attempts, "p50_ms",
                  percentile(latencies, total, 0.5), "p90_ms", percentile(latencies, total, 0.9),
                  "p99_ms", percentile(latencies, total, 0.99), "min_ms", latencies[0], "max_ms",
                  latencies[total - 1], "elapsed_ms", elapsed);
    free(latencies);
    free(workers);
    free(ids);
    return failures == 0 ? 0 : -1;
}

/* --- main -------------------------------------------------------------------------- */

static void *cancel_later(void *arg)
{
    probe *p = arg;
    struct timespec pause = {.tv_sec = p->options->cancel_after_ms / 1000,
                             .tv_nsec = (long)(p->options->cancel_after_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    atomic_store(&p->cancelled, true);
    return NULL;
}

static void set_log_level(const char *name)
{
    log_level level;
    if (!log_parse_level(name, &level))
        usage();
    log_set_level(level);
}

static int parse_options(int argc, char **argv, probe_options *o)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *name = argv[i];
        if (strcmp(name, "--all") == 0) {
            o->all_pages = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *value = argv[++i];
        if (strcmp(name, "--endpoint") == 0)
            o->config.endpoint = value;
        else if (strcmp(name, "--region") == 0)
            o->config.region = value;
        else if (strcmp(name, "--access-key") == 0)
            o->config.access_key_id = value;
        else if (strcmp(name, "--secret-key") == 0)
            o->config.secret_access_key = value;
        else if (strcmp(name, "--ca-bundle") == 0)
            o->config.ca_bundle = value;
        else if (strcmp(name, "--max-attempts") == 0)
            o->config.max_attempts = atoi(value);
        else if (strcmp(name, "--timeout-ms") == 0)
            o->config.request_timeout_ms = atoi(value);
        else if (strcmp(name, "--connect-timeout-ms") == 0)
            o->config.connect_timeout_ms = atoi(value);
        else if (strcmp(name, "--pool-size") == 0)
            o->config.pool_size = (size_t)atoi(value);
        else if (strcmp(name, "--deadline-ms") == 0)
            o->deadline_ms = atoi(value);
        else if (strcmp(name, "--cancel-after-ms") == 0)
            o->cancel_after_ms = atoi(value);
        else if (strcmp(name, "--limit") == 0)
            o->limit = atoi(value);
        else if (strcmp(name, "--marker") == 0)
            o->marker = value;
        else if (strcmp(name, "--threads") == 0)
            o->threads = atoi(value);
        else if (strcmp(name, "--resource-type") == 0)
            o->resource_type = value;
        else if (strcmp(name, "--per-page") == 0)
            o->per_page = atoi(value);
        else if (strcmp(name, "--token") == 0)
            o->token = value;
        else if (strcmp(name, "--log-level") == 0)
            set_log_level(value);
        else
            usage();
    }
    return i;
}

static int print_outcome(const char *op, int rc, json_t *result, const aws_error *err,
                         kms_client *client, double elapsed_ms)
{
    kms_client_stats stats;
    kms_client_get_stats(client, &stats);
    json_t *out = json_pack("{s:b, s:s, s:i, s:I, s:I, s:f}", "ok", rc == 0, "op", op, "attempts",
                            err->attempts, "http_requests", (json_int_t)stats.http_requests,
                            "connections_opened", (json_int_t)stats.connections_opened,
                            "elapsed_ms", elapsed_ms);
    json_object_set_new(out, "result", result ? result : json_null());
    if (rc != 0)
        json_object_set_new(out, "error", error_json(err));
    char *text = json_dumps(out, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(out);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    probe_options options = {0};
    int first = parse_options(argc, argv, &options);
    if (first >= argc)
        usage();
    const char *op = argv[first];
    op_fn fn = strcmp(op, "repeat") == 0 ? run_repeat : find_op(op);
    if (fn == NULL)
        usage();
    aws_error err;
    aws_error_clear(&err);
    kms_client *client = kms_client_new(&options.config, &err);
    if (client == NULL) {
        json_t *out =
            json_pack("{s:b, s:s, s:o}", "ok", false, "op", op, "error", error_json(&err));
        char *text = json_dumps(out, JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(out);
        return 1;
    }
    probe p = {.client = client, .options = &options};
    atomic_init(&p.cancelled, false);
    pthread_t canceller;
    if (options.cancel_after_ms > 0)
        pthread_create(&canceller, NULL, cancel_later, &p);
    json_t *result = NULL;
    double start = now_ms();
    int rc = fn(&p, argc - first, argv + first, &result, &err);
    double elapsed = now_ms() - start;
    if (options.cancel_after_ms > 0)
        pthread_join(canceller, NULL);
    int status = rc == -2 ? 2 : print_outcome(op, rc, result, &err, client, elapsed);
    kms_client_free(client);
    return status;
}
