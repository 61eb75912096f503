/* The typed KMS client (kms.h): each operation encodes its JSON 1.1 request,
 * sends it (signed with SigV4 by the HTTP layer, retried in standard mode)
 * and decodes the answer into plain C structs. STS GetCallerIdentity uses the
 * query protocol and an XML answer. The same client (credentials, connection
 * pool, retry quota) also serves the Resource Groups Tagging API (tagging.c).
 * Every answer's Date teaches the skew-corrected clock (clock.h); a request
 * refused for clock skew is signed again with the corrected time and sent once
 * more, at most once per call, outside max_attempts and without taking retry
 * tokens: it is not a sign of an overloaded service, and it cannot repeat once
 * the clock is corrected. */
#include "aws/kms.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"
#include "aws/endpoints.h"
#include "aws/kms_internal.h"
#include "aws/sdk_env.h"
#include "aws/sts.h"
#include "common/clock.h"
#include "common/log.h"

/* One logical call and the state of its latest attempt. */
typedef struct {
    kms_client *client;
    const aws_call_ctx *ctx;
    const char *operation; /* "CreateKey", ... */
    const char *url;
    const aws_sigv4_scope *scope;
    const char *const *headers;
    const char *body;
    aws_http_response response;
    bool skew_retried; /* the one re-signed attempt after a clock skew refusal is spent */
} call_state;

/* --- client -------------------------------------------------------------------- */

/* The plugin's `endpoint` is a KMS URL (often a KMS VPC endpoint): it never
 * applies to STS or the tagging API, which take their own variables. */
static int resolve_endpoints(kms_client *client, const aws_client_config *config,
                             const char *region, aws_error *err)
{
    if (aws_endpoint_resolve("kms", region, config->endpoint, config->use_fips_endpoint,
                             client->endpoint, sizeof client->endpoint) != 0 ||
        aws_endpoint_resolve("sts", region, NULL, config->use_fips_endpoint, client->sts_endpoint,
                             sizeof client->sts_endpoint) != 0 ||
        aws_endpoint_resolve("tagging", region, NULL, config->use_fips_endpoint,
                             client->tagging_endpoint, sizeof client->tagging_endpoint) != 0) {
        aws_error_set(err, AWS_ERR_VALIDATION, "invalid KMS, STS or tagging endpoint URL");
        return -1;
    }
    if (aws_sigv4_scope_init(&client->kms_scope, region, "kms") != 0 ||
        aws_sigv4_scope_init(&client->sts_scope, region, "sts") != 0 ||
        aws_sigv4_scope_init(&client->tagging_scope, region, "tagging") != 0) {
        aws_error_set(err, AWS_ERR_VALIDATION, "invalid region \"%s\"", region);
        return -1;
    }
    return 0;
}

static void log_settings(const kms_client *client, const aws_sdk_settings *settings)
{
    char attempts[16];
    snprintf(attempts, sizeof attempts, "%d", settings->max_attempts);
    log_write(LOG_DEBUG, "aws", "AWS client settings", "region", settings->region, "region_source",
              settings->region_source, "kms_endpoint", client->endpoint, "tagging_endpoint",
              client->tagging_endpoint, "max_attempts", attempts, "max_attempts_source",
              settings->max_attempts_source, "ca_bundle", settings->ca_bundle, "ca_bundle_source",
              settings->ca_bundle_source, LOG_END);
}

static int create_transport(kms_client *client, const aws_client_config *config,
                            const aws_sdk_settings *settings, aws_error *err)
{
    if (client->hooks.send == NULL) {
        aws_http_options options = {
            .pool_size = config->pool_size,
            .connect_timeout_ms = config->connect_timeout_ms,
            .request_timeout_ms = config->request_timeout_ms,
            .ca_bundle = settings->ca_bundle[0] ? settings->ca_bundle : NULL,
        };
        if ((client->http = aws_http_new(&options)) == NULL) {
            aws_error_set(err, AWS_ERR_INTERNAL, "cannot initialise the HTTP client");
            return -1;
        }
    }
    if (client->hooks.get_credentials == NULL) {
        aws_credentials_options options = {
            .access_key_id = config->access_key_id,
            .secret_access_key = config->secret_access_key,
            .region = settings->region,
            .use_fips_endpoint = config->use_fips_endpoint,
            .http = client->http,
        };
        if ((client->credentials = aws_credentials_provider_new(&options)) == NULL) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot set up the AWS credential chain");
            return -1;
        }
    }
    return 0;
}

kms_client *kms_client_new_with_hooks(const aws_client_config *config,
                                      const kms_client_hooks *hooks, aws_error *err)
{
    aws_error_clear(err);
    kms_client *client = calloc(1, sizeof *client);
    if (client == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (hooks != NULL)
        client->hooks = *hooks;
    aws_retry_quota_init(&client->quota, AWS_RETRY_QUOTA_CAPACITY);
    if (aws_sdk_settings_resolve_env(config, &client->hooks.env, &client->settings, err) != 0 ||
        resolve_endpoints(client, config, client->settings.region, err) != 0 ||
        create_transport(client, config, &client->settings, err) != 0) {
        kms_client_free(client);
        return NULL;
    }
    log_settings(client, &client->settings);
    return client;
}

kms_client *kms_client_new(const aws_client_config *config, aws_error *err)
{
    return kms_client_new_with_hooks(config, NULL, err);
}

void kms_client_free(kms_client *client)
{
    if (client == NULL)
        return;
    atomic_store(&client->closing, true);
    aws_http_free(client->http); /* first: its helper's last jobs may use the credentials */
    aws_credentials_provider_free(client->credentials);
    aws_retry_quota_destroy(&client->quota);
    free(client);
}

const char *kms_client_endpoint(const kms_client *client) { return client->endpoint; }

void kms_client_get_info(const kms_client *client, kms_client_info *out)
{
    *out = (kms_client_info){
        .region = client->settings.region,
        .region_source = client->settings.region_source,
        .kms_endpoint = client->endpoint,
        .sts_endpoint = client->sts_endpoint,
        .tagging_endpoint = client->tagging_endpoint,
        .ca_bundle = client->settings.ca_bundle,
        .ca_bundle_source = client->settings.ca_bundle_source,
        .max_attempts = client->settings.max_attempts,
        .max_attempts_source = client->settings.max_attempts_source,
    };
}

int kms_client_retry_tokens(kms_client *client)
{
    return aws_retry_quota_available(&client->quota);
}

void kms_client_get_stats(kms_client *client, kms_client_stats *out)
{
    out->http_requests = client->http ? aws_http_requests_made(client->http) : 0;
    out->connections_opened = client->http ? aws_http_connections_opened(client->http) : 0;
}

/* --- key specs ------------------------------------------------------------------- */

static const char *const key_spec_names[] = {
    [KMS_KEY_SPEC_UNKNOWN] = "UNKNOWN",
    [KMS_KEY_SPEC_RSA_2048] = "RSA_2048",
    [KMS_KEY_SPEC_RSA_4096] = "RSA_4096",
    [KMS_KEY_SPEC_ECC_NIST_P256] = "ECC_NIST_P256",
    [KMS_KEY_SPEC_ECC_NIST_P384] = "ECC_NIST_P384",
};

const char *kms_key_spec_name(kms_key_spec spec)
{
    if ((unsigned)spec >= sizeof key_spec_names / sizeof key_spec_names[0])
        return "UNKNOWN";
    return key_spec_names[spec];
}

kms_key_spec kms_key_spec_parse(const char *name)
{
    for (size_t i = 1; name != NULL && i < sizeof key_spec_names / sizeof key_spec_names[0]; i++) {
        if (strcmp(name, key_spec_names[i]) == 0)
            return (kms_key_spec)i;
    }
    return KMS_KEY_SPEC_UNKNOWN;
}

/* --- one call: attempts, retries, logging ------------------------------------------ */

int kms_client_credentials(kms_client *client, const aws_call_ctx *ctx, aws_credentials *out,
                           aws_error *err)
{
    if (client->hooks.get_credentials != NULL)
        return client->hooks.get_credentials(client->hooks.user, out, err);
    return aws_credentials_get(client->credentials, ctx, out, err);
}

static int send_request(kms_client *client, const aws_http_request *request,
                        aws_http_response *response, aws_error *err)
{
    if (client->hooks.send != NULL)
        return client->hooks.send(client->hooks.user, request, response, err);
    return aws_http_perform(client->http, request, response, err);
}

/* One signed HTTP exchange; the answer's Date teaches the clock. */
static int exchange(call_state *call, aws_error *err)
{
    aws_http_response_clear(&call->response);
    aws_credentials credentials;
    memset(&credentials, 0, sizeof credentials);
    if (kms_client_credentials(call->client, call->ctx, &credentials, err) != 0) {
        aws_credentials_clear(&credentials);
        if (err->status == AWS_OK)
            aws_error_set(err, AWS_ERR_CREDENTIALS, "no AWS credentials");
        return -1;
    }
    aws_http_request request = {
        .method = "POST",
        .url = call->url,
        .headers = call->headers,
        .body = call->body,
        .body_len = strlen(call->body),
        .sigv4_scope = call->scope,
        .credentials = &credentials,
        .call = call->ctx != NULL ? *call->ctx : (aws_call_ctx){0},
    };
    int rc = send_request(call->client, &request, &call->response, err);
    aws_credentials_clear(&credentials);
    if (rc == 0)
        aws_clock_observe(call->response.server_date, call->response.host_time, call->url);
    return rc;
}

bool kms_resign_after_skew(const aws_error *err, int64_t signed_offset, bool already_resigned)
{
    return !already_resigned && aws_clock_is_skew_error(err->code, err->message) &&
           aws_clock_worth_resigning(signed_offset);
}

static int attempt_call(void *user, aws_error *err)
{
    call_state *call = user;
    for (;;) {
        if (exchange(call, err) != 0)
            return -1;
        if (call->response.status >= 200 && call->response.status < 300)
            return 0;
        aws_error_from_answer(call->operation, call->response.status, call->response.body,
                              call->response.request_id, err);
        if (!kms_resign_after_skew(err, call->response.clock_offset, call->skew_retried))
            return -1;
        call->skew_retried = true;
        int attempts = err->attempts;
        aws_error_clear(err);
        err->attempts = attempts;
    }
}

void kms_log_call(const char *operation, long status, const char *request_id, const aws_error *err,
                  int64_t started_ms, int rc)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char status_text[16], attempts[16], duration[32];
    snprintf(status_text, sizeof status_text, "%ld", rc == 0 ? status : (long)err->http_status);
    snprintf(attempts, sizeof attempts, "%d", err->attempts);
    snprintf(duration, sizeof duration, "%" PRId64, clock_monotonic_ms() - started_ms);
    log_write(LOG_DEBUG, "aws", "AWS call", "operation", operation, "http_status", status_text,
              "attempts", attempts, "duration_ms", duration, "request_id",
              rc == 0 ? request_id : err->request_id, "result",
              rc == 0 ? "OK" : aws_status_name(err->status), LOG_END);
}

aws_retry_policy kms_client_retry_policy(kms_client *client)
{
    return (aws_retry_policy){
        .max_attempts = client->settings.max_attempts,
        .quota = &client->quota,
        .hooks = client->hooks.retry,
    };
}

/* Runs a call with retries; on success call->response holds the 2xx answer. */
static int run_call(call_state *call, aws_error *err)
{
    aws_retry_policy policy = kms_client_retry_policy(call->client);
    int64_t started = clock_monotonic_ms();
    int rc = aws_retry_run(&policy, call->ctx, attempt_call, call, err);
    if (call->skew_retried)
        err->attempts++; /* the re-signed exchange was an HTTP attempt too */
    kms_log_call(call->operation, call->response.status, call->response.request_id, err, started,
                 rc);
    return rc;
}

void kms_bad_response(aws_error *err, const char *operation, const aws_http_response *response,
                      const char *what)
{
    int attempts = err->attempts;
    aws_error_clear(err);
    aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s returned an unexpected answer: %s", operation,
                  what);
    err->attempts = attempts;
    err->http_status = (int)response->status;
    snprintf(err->request_id, sizeof err->request_id, "%s", response->request_id);
}

void kms_target_header(aws_json_service service, const char *operation, char *out, size_t size)
{
    snprintf(out, size, "X-Amz-Target: %s.%s",
             service == AWS_JSON_SERVICE_TAGGING ? "ResourceGroupsTaggingAPI_20170126"
                                                 : "TrentService",
             operation);
}

int kms_client_call(kms_client *client, const aws_call_ctx *ctx, aws_json_service service,
                    const char *operation, char *body, aws_http_response *answer, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    memset(answer, 0, sizeof *answer);
    aws_error_clear(err);
    if (body == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot encode the %s request", operation);
        return -1;
    }
    bool tagging = service == AWS_JSON_SERVICE_TAGGING;
    char target[128];
    kms_target_header(service, operation, target, sizeof target);
    const char *headers[] = {target, KMS_JSON_CONTENT_TYPE, KMS_USER_AGENT, NULL};
    call_state call = {.client = client,
                       .ctx = ctx,
                       .operation = operation,
                       .url = tagging ? client->tagging_endpoint : client->endpoint,
                       .scope = tagging ? &client->tagging_scope : &client->kms_scope,
                       .headers = headers,
                       .body = body};
    int rc = run_call(&call, err);
    free(body);
    if (rc != 0) {
        aws_http_response_clear(&call.response);
        return -1;
    }
    /* Kept for the caller's logs, and for a bad-answer error. */
    err->http_status = (int)call.response.status;
    snprintf(err->request_id, sizeof err->request_id, "%s", call.response.request_id);
    *answer = call.response;
    return 0;
}

int kms_client_json_call(kms_client *client, const aws_call_ctx *ctx, aws_json_service service,
                         const char *operation, char *body, json_t **answer, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    *answer = NULL;
    aws_http_response response;
    if (kms_client_call(client, ctx, service, operation, body, &response, err) != 0)
        return -1;
    const char *text = response.body ? response.body : "";
    *answer = text[strspn(text, " \t\r\n")] == '\0' ? json_object() : json_loads(text, 0, NULL);
    int rc = 0;
    if (!json_is_object(*answer)) {
        json_decref(*answer);
        *answer = NULL;
        kms_bad_response(err, operation, &response, "the body is not a JSON object");
        rc = -1;
    }
    aws_http_response_clear(&response);
    return rc;
}

/* Sends request (consumed) as KMS operation; see kms_client_json_call. */
static int kms_call(kms_client *client, const aws_call_ctx *ctx, const char *operation,
                    json_t *request, json_t **answer, aws_error *err)
{
    char *body = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    return kms_client_json_call(client, ctx, AWS_JSON_SERVICE_KMS, operation, body, answer, err);
}

/* --- decoding helpers -------------------------------------------------------------- */

static int decode_key_metadata(const json_t *metadata, kms_key_metadata *out)
{
    memset(out, 0, sizeof *out);
    char spec[32];
    if (!json_is_object(metadata) ||
        aws_json_copy_string(metadata, "KeyId", true, out->key_id, sizeof out->key_id) != 0 ||
        aws_json_copy_string(metadata, "Arn", false, out->arn, sizeof out->arn) != 0 ||
        aws_json_copy_string(metadata, "KeyState", false, out->key_state, sizeof out->key_state) !=
            0 ||
        aws_json_copy_string(metadata, "KeyManager", false, out->key_manager,
                             sizeof out->key_manager) != 0 ||
        aws_json_copy_string(metadata, "KeySpec", false, spec, sizeof spec) != 0)
        return -1;
    if (spec[0] == '\0' &&
        aws_json_copy_string(metadata, "CustomerMasterKeySpec", false, spec, sizeof spec) != 0)
        return -1;
    /* KMS allows 8192 characters; a longer description than ours is never
     * one the plugin wrote, so its prefix is enough. */
    const char *description = json_string_value(json_object_get(metadata, "Description"));
    snprintf(out->description, sizeof out->description, "%s", description ? description : "");
    out->enabled = aws_json_bool(metadata, "Enabled");
    out->creation_date = aws_json_timestamp(metadata, "CreationDate");
    out->key_spec = kms_key_spec_parse(spec);
    return 0;
}

static int finish_key_metadata(json_t *answer, kms_key_metadata *out, const char *operation,
                               aws_error *err)
{
    int rc = decode_key_metadata(json_object_get(answer, "KeyMetadata"), out);
    json_decref(answer);
    if (rc != 0) {
        int attempts = err->attempts;
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "KMS %s returned an unexpected answer: no valid KeyMetadata", operation);
        err->attempts = attempts;
    }
    return rc;
}

static void set_bad_answer(aws_error *err, const char *operation, const char *what)
{
    err->status = AWS_ERR_BAD_RESPONSE;
    snprintf(err->message, sizeof err->message, "%s returned an unexpected answer: %s", operation,
             what);
}

static json_t *tags_json(const kms_tag *tags, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(array, json_pack("{s:s, s:s}", "TagKey", tags[i].key, "TagValue",
                                               tags[i].value ? tags[i].value : ""));
    return array;
}

/* --- operations -------------------------------------------------------------------- */

int kms_create_key(kms_client *client, const aws_call_ctx *ctx, const kms_create_key_input *input,
                   kms_key_metadata *out, aws_error *err)
{
    json_t *request = json_pack("{s:s, s:s}", "KeyUsage", "SIGN_VERIFY", "KeySpec",
                                kms_key_spec_name(input->key_spec));
    if (input->description != NULL)
        json_object_set_new(request, "Description", json_string(input->description));
    if (input->policy != NULL)
        json_object_set_new(request, "Policy", json_string(input->policy));
    if (input->tag_count > 0)
        json_object_set_new(request, "Tags", tags_json(input->tags, input->tag_count));
    json_t *answer = NULL;
    if (kms_call(client, ctx, "CreateKey", request, &answer, err) != 0)
        return -1;
    return finish_key_metadata(answer, out, "CreateKey", err);
}

int kms_describe_key(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     kms_key_metadata *out, aws_error *err)
{
    json_t *answer = NULL;
    if (kms_call(client, ctx, "DescribeKey", json_pack("{s:s}", "KeyId", key_id), &answer, err) !=
        0)
        return -1;
    return finish_key_metadata(answer, out, "DescribeKey", err);
}

void kms_public_key_clear(kms_public_key *key)
{
    if (key == NULL)
        return;
    free(key->der);
    memset(key, 0, sizeof *key);
}

int kms_get_public_key(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                       kms_public_key *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *answer = NULL;
    if (kms_call(client, ctx, "GetPublicKey", json_pack("{s:s}", "KeyId", key_id), &answer, err) !=
        0)
        return -1;
    char spec[32];
    const char *der = json_string_value(json_object_get(answer, "PublicKey"));
    int rc = -1;
    if (der == NULL ||
        aws_json_copy_string(answer, "KeyId", false, out->key_id, sizeof out->key_id) != 0 ||
        aws_json_copy_string(answer, "KeySpec", false, spec, sizeof spec) != 0)
        set_bad_answer(err, "GetPublicKey", "no PublicKey");
    else if (aws_base64_decode(der, &out->der, &out->der_len) != 0)
        set_bad_answer(err, "GetPublicKey", "PublicKey is not base64");
    else {
        out->key_spec = kms_key_spec_parse(spec);
        rc = 0;
    }
    json_decref(answer);
    return rc;
}

/* For the operations whose answer carries nothing we need. */
static int kms_call_no_answer(kms_client *client, const aws_call_ctx *ctx, const char *operation,
                              json_t *request, aws_error *err)
{
    json_t *answer = NULL;
    int rc = kms_call(client, ctx, operation, request, &answer, err);
    json_decref(answer);
    return rc;
}

int kms_create_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err)
{
    return kms_call_no_answer(
        client, ctx, "CreateAlias",
        json_pack("{s:s, s:s}", "AliasName", alias_name, "TargetKeyId", target_key_id), err);
}

int kms_update_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err)
{
    return kms_call_no_answer(
        client, ctx, "UpdateAlias",
        json_pack("{s:s, s:s}", "AliasName", alias_name, "TargetKeyId", target_key_id), err);
}

int kms_delete_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     aws_error *err)
{
    return kms_call_no_answer(client, ctx, "DeleteAlias",
                              json_pack("{s:s}", "AliasName", alias_name), err);
}

int kms_schedule_key_deletion(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                              int pending_window_days, aws_error *err)
{
    json_t *request = json_pack("{s:s}", "KeyId", key_id);
    if (pending_window_days > 0)
        json_object_set_new(request, "PendingWindowInDays", json_integer(pending_window_days));
    return kms_call_no_answer(client, ctx, "ScheduleKeyDeletion", request, err);
}

int kms_tag_resource(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const kms_tag *tags, size_t tag_count, aws_error *err)
{
    json_t *request = json_pack("{s:s, s:o}", "KeyId", key_id, "Tags", tags_json(tags, tag_count));
    return kms_call_no_answer(client, ctx, "TagResource", request, err);
}

int kms_untag_resource(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                       const char *const *tag_keys, size_t tag_key_count, aws_error *err)
{
    json_t *keys = json_array();
    for (size_t i = 0; keys != NULL && i < tag_key_count; i++) {
        if (json_array_append_new(keys, json_string(tag_keys[i])) != 0) {
            json_decref(keys); /* not valid UTF-8: the request cannot be encoded */
            keys = NULL;
        }
    }
    json_t *request = keys ? json_pack("{s:s, s:o}", "KeyId", key_id, "TagKeys", keys) : NULL;
    return kms_call_no_answer(client, ctx, "UntagResource", request, err);
}

/* --- tags read back -------------------------------------------------------------- */

void aws_tag_set_clear(aws_tag_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].key);
        free(set->items[i].value);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}

const char *aws_tag_set_get(const aws_tag_set *set, const char *key)
{
    for (size_t i = 0; set != NULL && i < set->count; i++) {
        if (strcmp(set->items[i].key, key) == 0)
            return set->items[i].value;
    }
    return NULL;
}

int aws_tag_set_decode(const json_t *array, const char *key_member, const char *value_member,
                       aws_tag_set *out)
{
    memset(out, 0, sizeof *out);
    if (array != NULL && !json_is_array(array))
        return -1;
    size_t count = json_array_size(array);
    out->items = calloc(count ? count : 1, sizeof *out->items);
    if (out->items == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const json_t *item = json_array_get(array, i);
        const char *key = json_string_value(json_object_get(item, key_member));
        const char *value = json_string_value(json_object_get(item, value_member));
        if (key == NULL || key[0] == '\0' || value == NULL)
            goto bad;
        out->items[i].key = strdup(key);
        out->items[i].value = strdup(value);
        out->count = i + 1;
        if (out->items[i].key == NULL || out->items[i].value == NULL)
            goto bad;
    }
    return 0;
bad:
    aws_tag_set_clear(out);
    return -1;
}

void kms_tag_page_clear(kms_tag_page *page)
{
    if (page == NULL)
        return;
    aws_tag_set_clear(&page->tags);
    memset(page, 0, sizeof *page);
}

/* Adds Limit and Marker to a list request. */
static json_t *list_request(json_t *request, const char *marker, int limit)
{
    if (limit > 0)
        json_object_set_new(request, "Limit", json_integer(limit));
    if (marker != NULL && marker[0] != '\0')
        json_object_set_new(request, "Marker", json_string(marker));
    return request;
}

/* Truncated and NextMarker; a truncated page must carry a marker. */
static int decode_page_end(const json_t *answer, bool *truncated, char *marker, size_t marker_size)
{
    *truncated = aws_json_bool(answer, "Truncated");
    if (aws_json_copy_string(answer, "NextMarker", false, marker, marker_size) != 0)
        return -1;
    return *truncated && marker[0] == '\0' ? -1 : 0;
}

static int decode_alias(const json_t *item, kms_alias *alias)
{
    if (!json_is_object(item) ||
        aws_json_copy_string(item, "AliasName", true, alias->alias_name,
                             sizeof alias->alias_name) != 0 ||
        aws_json_copy_string(item, "AliasArn", false, alias->alias_arn, sizeof alias->alias_arn) !=
            0 ||
        aws_json_copy_string(item, "TargetKeyId", false, alias->target_key_id,
                             sizeof alias->target_key_id) != 0)
        return -1;
    alias->creation_date = aws_json_timestamp(item, "CreationDate");
    alias->last_updated_date = aws_json_timestamp(item, "LastUpdatedDate");
    return 0;
}

void kms_alias_page_clear(kms_alias_page *page)
{
    if (page == NULL)
        return;
    free(page->aliases);
    memset(page, 0, sizeof *page);
}

static int decode_alias_page(const json_t *answer, kms_alias_page *out)
{
    const json_t *items = json_object_get(answer, "Aliases");
    if (items != NULL && !json_is_array(items))
        return -1;
    size_t count = json_array_size(items);
    out->aliases = calloc(count ? count : 1, sizeof *out->aliases);
    if (out->aliases == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (decode_alias(json_array_get(items, i), &out->aliases[i]) != 0)
            return -1;
    }
    out->count = count;
    return decode_page_end(answer, &out->truncated, out->next_marker, sizeof out->next_marker);
}

int kms_list_aliases(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const char *marker, int limit, kms_alias_page *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *request = list_request(json_object(), marker, limit);
    if (key_id != NULL && key_id[0] != '\0')
        json_object_set_new(request, "KeyId", json_string(key_id));
    json_t *answer = NULL;
    if (kms_call(client, ctx, "ListAliases", request, &answer, err) != 0)
        return -1;
    int rc = decode_alias_page(answer, out);
    json_decref(answer);
    if (rc != 0) {
        kms_alias_page_clear(out);
        set_bad_answer(err, "ListAliases", "malformed Aliases page");
    }
    return rc;
}

void kms_key_page_clear(kms_key_page *page)
{
    if (page == NULL)
        return;
    free(page->keys);
    memset(page, 0, sizeof *page);
}

static int decode_key_page(const json_t *answer, kms_key_page *out)
{
    const json_t *items = json_object_get(answer, "Keys");
    if (items != NULL && !json_is_array(items))
        return -1;
    size_t count = json_array_size(items);
    out->keys = calloc(count ? count : 1, sizeof *out->keys);
    if (out->keys == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        const json_t *item = json_array_get(items, i);
        if (!json_is_object(item) ||
            aws_json_copy_string(item, "KeyId", true, out->keys[i].key_id,
                                 sizeof out->keys[i].key_id) != 0 ||
            aws_json_copy_string(item, "KeyArn", false, out->keys[i].arn,
                                 sizeof out->keys[i].arn) != 0)
            return -1;
    }
    out->count = count;
    return decode_page_end(answer, &out->truncated, out->next_marker, sizeof out->next_marker);
}

int kms_list_keys(kms_client *client, const aws_call_ctx *ctx, const char *marker, int limit,
                  kms_key_page *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *answer = NULL;
    if (kms_call(client, ctx, "ListKeys", list_request(json_object(), marker, limit), &answer,
                 err) != 0)
        return -1;
    int rc = decode_key_page(answer, out);
    json_decref(answer);
    if (rc != 0) {
        kms_key_page_clear(out);
        set_bad_answer(err, "ListKeys", "malformed Keys page");
    }
    return rc;
}

int kms_list_resource_tags(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                           const char *marker, int limit, kms_tag_page *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *request = list_request(json_pack("{s:s}", "KeyId", key_id), marker, limit);
    json_t *answer = NULL;
    if (kms_call(client, ctx, "ListResourceTags", request, &answer, err) != 0)
        return -1;
    int rc = aws_tag_set_decode(json_object_get(answer, "Tags"), "TagKey", "TagValue", &out->tags);
    if (rc == 0)
        rc = decode_page_end(answer, &out->truncated, out->next_marker, sizeof out->next_marker);
    json_decref(answer);
    if (rc != 0) {
        kms_tag_page_clear(out);
        set_bad_answer(err, "ListResourceTags", "malformed Tags page");
    }
    return rc;
}

/* --- STS --------------------------------------------------------------------------- */

static int sts_signer(void *user, const aws_call_ctx *ctx, aws_credentials *out, aws_error *err)
{
    return kms_client_credentials(user, ctx, out, err);
}

static int sts_send(void *user, const aws_http_request *request, aws_http_response *response,
                    aws_error *err)
{
    return send_request(user, request, response, err);
}

int sts_get_caller_identity(kms_client *client, const aws_call_ctx *ctx, sts_identity *out,
                            aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    aws_error_clear(err);
    memset(out, 0, sizeof *out);
    char url[sizeof client->sts_endpoint + 1];
    snprintf(url, sizeof url, "%s/", client->sts_endpoint);
    static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
    aws_sts_request request = {.operation = "GetCallerIdentity",
                               .url = url,
                               .scope = &client->sts_scope,
                               .body = body,
                               .body_len = sizeof body - 1,
                               .user_agent = KMS_USER_AGENT,
                               .signer = sts_signer,
                               .signer_user = client,
                               .send = sts_send,
                               .send_user = client};
    aws_retry_policy policy = kms_client_retry_policy(client);
    aws_http_response response;
    int64_t started = clock_monotonic_ms();
    int rc = aws_sts_post(&request, &policy, ctx, &response, err);
    kms_log_call(request.operation, response.status, response.request_id, err, started, rc);
    if (rc == 0) {
        err->http_status = (int)response.status;
        snprintf(err->request_id, sizeof err->request_id, "%s", response.request_id);
    }
    if (rc == 0 && (aws_xml_tag(response.body, "Account", out->account, sizeof out->account) != 0 ||
                    aws_xml_tag(response.body, "Arn", out->arn, sizeof out->arn) != 0 ||
                    aws_xml_tag(response.body, "UserId", out->user_id, sizeof out->user_id) != 0)) {
        kms_bad_response(err, request.operation, &response, "no Account, Arn or UserId");
        rc = -1;
    }
    aws_http_response_clear(&response);
    return rc;
}
