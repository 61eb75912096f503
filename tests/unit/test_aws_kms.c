/* Unit tests for the typed KMS client over a fake transport: the JSON 1.1
 * request each operation sends (target, content type, members), the decoding
 * of each answer, error typing, bad answers, retries through the client,
 * STS GetCallerIdentity's query request and XML answer, and clock skew: a
 * refusal for skew is signed again once on the corrected clock, outside the
 * attempts and the retry tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/clock.h"
#include "aws/kms_internal.h"
#include "common/log.h"

/* --- fake transport --------------------------------------------------------- */

typedef struct {
    long status; /* 0: transport failure */
    aws_status failure;
    const char *body;
    const char *request_id;
    int64_t date_skew; /* non-zero: a Date header this far from the host clock */
} canned;

typedef struct {
    char url[256];
    char headers[1024]; /* "\n"-joined */
    char body[4096];
    char scope[96];
    char access_key[128];
    char session_token[64];
    char method[8];
    int64_t clock_offset; /* the offset the request was signed with */
} recorded;

typedef struct {
    canned answers[8];
    int answer_count;
    recorded requests[8];
    int request_count;
    const char *session_token;
} fake;

static int fake_send(void *user, const aws_http_request *request, aws_http_response *response,
                     aws_error *err)
{
    fake *f = user;
    assert_true(f->request_count < 8);
    recorded *r = &f->requests[f->request_count];
    snprintf(r->url, sizeof r->url, "%s", request->url);
    snprintf(r->method, sizeof r->method, "%s", request->method);
    snprintf(r->body, sizeof r->body, "%.*s", (int)request->body_len, request->body);
    if (request->sigv4_scope != NULL)
        snprintf(r->scope, sizeof r->scope, "aws:amz:%s:%s", request->sigv4_scope->region,
                 request->sigv4_scope->service);
    else
        r->scope[0] = '\0';
    snprintf(r->access_key, sizeof r->access_key, "%s", request->credentials->access_key_id);
    snprintf(r->session_token, sizeof r->session_token, "%.63s",
             request->credentials->session_token);
    for (const char *const *h = request->headers; h && *h; h++) {
        strncat(r->headers, *h, sizeof r->headers - strlen(r->headers) - 2);
        strcat(r->headers, "\n");
    }
    int index = f->request_count++;
    const canned *a = &f->answers[index < f->answer_count ? index : f->answer_count - 1];
    memset(response, 0, sizeof *response);
    r->clock_offset = response->clock_offset = aws_clock_offset(); /* as aws_http_perform */
    if (a->date_skew != 0) {
        response->host_time = (int64_t)time(NULL);
        response->server_date = response->host_time + a->date_skew;
    }
    if (a->status == 0) {
        aws_error_set(err, a->failure, "fake transport failure");
        return -1;
    }
    response->status = a->status;
    response->body = strdup(a->body ? a->body : "");
    response->body_len = strlen(response->body);
    snprintf(response->request_id, sizeof response->request_id, "%s",
             a->request_id ? a->request_id : "rid-1");
    return 0;
}

static int fake_credentials(void *user, aws_credentials *out, aws_error *err)
{
    fake *f = user;
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->access_key_id, sizeof out->access_key_id, "AKIDTEST");
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "secret-test");
    if (f->session_token)
        snprintf(out->session_token, sizeof out->session_token, "%s", f->session_token);
    return 0;
}

static double zero_random(void *user)
{
    (void)user;
    return 0.0;
}

static int no_sleep(void *user, int64_t ms, const atomic_bool *cancelled)
{
    (void)user;
    (void)ms;
    (void)cancelled;
    return 0;
}

typedef struct {
    fake f;
    kms_client *client;
} fixture;

/* No AWS_MAX_ATTEMPTS, AWS_CA_BUNDLE or shared profile from the test machine. */
static const char *no_environment(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    kms_client_hooks hooks = {.send = fake_send,
                              .get_credentials = fake_credentials,
                              .user = &fx->f,
                              .retry = {.random = zero_random, .sleep_ms = no_sleep},
                              .env = {.getenv = no_environment}};
    aws_client_config config = {.region = "us-east-2", .endpoint = "http://127.0.0.1:1/"};
    aws_error err;
    fx->client = kms_client_new_with_hooks(&config, &hooks, &err);
    assert_non_null(fx->client);
    aws_clock_set_offset(0);
    log_set_level(LOG_ERROR);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kms_client_free(fx->client);
    free(fx);
    aws_clock_set_offset(0);
    return 0;
}

static void answer(fixture *fx, long status, const char *body)
{
    fx->f.answers[fx->f.answer_count++] = (canned){.status = status, .body = body};
}

/* The request body of request i, parsed. */
static json_t *sent_json(fixture *fx, int i)
{
    json_t *body = json_loads(fx->f.requests[i].body, 0, NULL);
    assert_non_null(body);
    return body;
}

static void assert_kms_request(fixture *fx, int i, const char *operation)
{
    recorded *r = &fx->f.requests[i];
    char target[96];
    snprintf(target, sizeof target, "X-Amz-Target: TrentService.%s\n", operation);
    assert_non_null(strstr(r->headers, target));
    assert_non_null(strstr(r->headers, "Content-Type: application/x-amz-json-1.1\n"));
    assert_string_equal(r->url, "http://127.0.0.1:1");
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->scope, "aws:amz:us-east-2:kms");
    assert_string_equal(r->access_key, "AKIDTEST");
}

static const char *member(json_t *object, const char *name)
{
    const char *value = json_string_value(json_object_get(object, name));
    return value ? value : "<absent>";
}

#define KEY_METADATA                                                                               \
    "{\"KeyMetadata\":{\"KeyId\":\"1234abcd-12ab-34cd-56ef-1234567890ab\","                        \
    "\"Arn\":\"arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\","     \
    "\"KeyState\":\"Enabled\",\"Enabled\":true,\"Description\":\"SPIRE_SERVER/td\","               \
    "\"KeyManager\":\"CUSTOMER\",\"CreationDate\":1.7000000125E9,\"KeySpec\":\"ECC_NIST_P256\","   \
    "\"KeyUsage\":\"SIGN_VERIFY\"}}"

/* --- operations ------------------------------------------------------------------ */

static void test_client_rejects_bad_region(void **state)
{
    (void)state;
    aws_client_config config = {.region = "us east"};
    aws_error err;
    assert_null(kms_client_new(&config, &err));
    assert_int_equal(err.status, AWS_ERR_VALIDATION);
    assert_non_null(strstr(err.message, "region"));
    config.region = NULL;
    assert_null(kms_client_new(&config, &err));
}

static void test_endpoint_reported(void **state)
{
    fixture *fx = *state;
    assert_string_equal(kms_client_endpoint(fx->client), "http://127.0.0.1:1");
}

static void test_key_spec_names(void **state)
{
    (void)state;
    assert_string_equal(kms_key_spec_name(KMS_KEY_SPEC_RSA_4096), "RSA_4096");
    assert_int_equal(kms_key_spec_parse("ECC_NIST_P384"), KMS_KEY_SPEC_ECC_NIST_P384);
    assert_int_equal(kms_key_spec_parse("SYMMETRIC_DEFAULT"), KMS_KEY_SPEC_UNKNOWN);
    assert_int_equal(kms_key_spec_parse(NULL), KMS_KEY_SPEC_UNKNOWN);
}

static void test_create_key(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, KEY_METADATA);
    kms_tag tags[] = {{"a", "1"}, {"b", "2"}};
    kms_create_key_input input = {.key_spec = KMS_KEY_SPEC_ECC_NIST_P256,
                                  .description = "SPIRE_SERVER/td",
                                  .policy = "{\"Version\":\"2012-10-17\"}",
                                  .tags = tags,
                                  .tag_count = 2};
    kms_key_metadata m;
    aws_error err;
    assert_int_equal(kms_create_key(fx->client, NULL, &input, &m, &err), 0);
    assert_kms_request(fx, 0, "CreateKey");
    json_t *sent = sent_json(fx, 0);
    assert_string_equal(member(sent, "KeyUsage"), "SIGN_VERIFY");
    assert_string_equal(member(sent, "KeySpec"), "ECC_NIST_P256");
    assert_string_equal(member(sent, "Description"), "SPIRE_SERVER/td");
    assert_string_equal(member(sent, "Policy"), "{\"Version\":\"2012-10-17\"}");
    json_t *sent_tags = json_object_get(sent, "Tags");
    assert_int_equal(json_array_size(sent_tags), 2);
    assert_string_equal(member(json_array_get(sent_tags, 1), "TagKey"), "b");
    assert_string_equal(member(json_array_get(sent_tags, 1), "TagValue"), "2");
    json_decref(sent);
    assert_string_equal(m.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
    assert_string_equal(m.key_state, "Enabled");
    assert_true(m.enabled);
    assert_string_equal(m.description, "SPIRE_SERVER/td");
    assert_string_equal(m.key_manager, "CUSTOMER");
    assert_true(m.creation_date == 1700000012.5);
    assert_int_equal(m.key_spec, KMS_KEY_SPEC_ECC_NIST_P256);
    assert_int_equal(err.attempts, 1);
}

static void test_create_key_minimal_request(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, KEY_METADATA);
    kms_create_key_input input = {.key_spec = KMS_KEY_SPEC_RSA_2048};
    kms_key_metadata m;
    assert_int_equal(kms_create_key(fx->client, NULL, &input, &m, NULL), 0);
    json_t *sent = sent_json(fx, 0);
    assert_int_equal(json_object_size(sent), 2); /* KeyUsage, KeySpec only */
    assert_string_equal(member(sent, "KeySpec"), "RSA_2048");
    json_decref(sent);
}

static void test_describe_key_and_missing_metadata(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, KEY_METADATA);
    answer(fx, 200, "{\"Other\":1}");
    kms_key_metadata m;
    aws_error err;
    assert_int_equal(kms_describe_key(fx->client, NULL, "alias/x", &m, &err), 0);
    assert_kms_request(fx, 0, "DescribeKey");
    json_t *sent = sent_json(fx, 0);
    assert_string_equal(member(sent, "KeyId"), "alias/x");
    json_decref(sent);
    assert_int_equal(kms_describe_key(fx->client, NULL, "alias/x", &m, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "DescribeKey"));
    assert_string_equal(err.request_id, "rid-1");
}

static void test_long_description_is_cut(void **state)
{
    fixture *fx = *state;
    static char body[4096];
    char description[2001];
    memset(description, 'd', 2000);
    description[2000] = '\0';
    snprintf(body, sizeof body, "{\"KeyMetadata\":{\"KeyId\":\"k\",\"Description\":\"%s\"}}",
             description);
    answer(fx, 200, body);
    kms_key_metadata m;
    assert_int_equal(kms_describe_key(fx->client, NULL, "k", &m, NULL), 0);
    assert_int_equal(strlen(m.description), sizeof m.description - 1);
}

static void test_get_public_key(void **state)
{
    fixture *fx = *state;
    answer(fx, 200,
           "{\"KeyId\":\"arn:aws:kms:us-east-2:1:key/k\",\"PublicKey\":\"MFkwEw==\","
           "\"KeySpec\":\"RSA_4096\",\"KeyUsage\":\"SIGN_VERIFY\"}");
    kms_public_key key;
    assert_int_equal(kms_get_public_key(fx->client, NULL, "k", &key, NULL), 0);
    assert_kms_request(fx, 0, "GetPublicKey");
    assert_string_equal(key.key_id, "arn:aws:kms:us-east-2:1:key/k");
    assert_int_equal(key.key_spec, KMS_KEY_SPEC_RSA_4096);
    assert_int_equal(key.der_len, 4);
    assert_memory_equal(key.der, "\x30\x59\x30\x13", 4);
    kms_public_key_clear(&key);
    assert_null(key.der);
}

static void test_get_public_key_bad_blob(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"KeyId\":\"k\",\"PublicKey\":\"***\"}");
    kms_public_key key;
    aws_error err;
    assert_int_equal(kms_get_public_key(fx->client, NULL, "k", &key, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "GetPublicKey"));
    assert_null(key.der);
}

static void test_sign(void **state)
{
    fixture *fx = *state;
    answer(
        fx, 200,
        "{\"KeyId\":\"arn:k\",\"Signature\":\"3q2+7w==\",\"SigningAlgorithm\":\"ECDSA_SHA_256\"}");
    uint8_t digest[32];
    memset(digest, 0xab, sizeof digest);
    uint8_t *signature = NULL;
    size_t signature_len = 0;
    assert_int_equal(kms_sign(fx->client, NULL, "k", digest, sizeof digest, "ECDSA_SHA_256",
                              &signature, &signature_len, NULL),
                     0);
    assert_kms_request(fx, 0, "Sign");
    json_t *sent = sent_json(fx, 0);
    assert_string_equal(member(sent, "MessageType"), "DIGEST");
    assert_string_equal(member(sent, "SigningAlgorithm"), "ECDSA_SHA_256");
    assert_string_equal(member(sent, "Message"), "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=");
    json_decref(sent);
    assert_int_equal(signature_len, 4);
    assert_memory_equal(signature, "\xde\xad\xbe\xef", 4);
    free(signature);
}

/* The Sign body is written by hand: odd key ids must still arrive intact,
 * and a key id that is not UTF-8 is refused before anything is sent. */
static void test_sign_body_escapes_key_id(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"Signature\":\"3q2+7w==\"}");
    uint8_t digest[32] = {0};
    uint8_t *signature = NULL;
    size_t signature_len = 0;
    const char *odd = "k\"e\\y\x01/\xc3\xa9";
    assert_int_equal(kms_sign(fx->client, NULL, odd, digest, sizeof digest, "ECDSA_SHA_256",
                              &signature, &signature_len, NULL),
                     0);
    free(signature);
    json_t *sent = sent_json(fx, 0);
    assert_string_equal(member(sent, "KeyId"), odd);
    json_decref(sent);
    aws_error err;
    assert_int_equal(kms_sign(fx->client, NULL, "k\xff", digest, sizeof digest, "ECDSA_SHA_256",
                              &signature, &signature_len, &err),
                     -1);
    assert_int_equal(err.status, AWS_ERR_INTERNAL);
    assert_null(signature);
}

static void test_alias_operations(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "");
    aws_error err;
    assert_int_equal(kms_create_alias(fx->client, NULL, "alias/a", "key-1", &err), 0);
    assert_int_equal(kms_update_alias(fx->client, NULL, "alias/a", "key-2", &err), 0);
    assert_int_equal(kms_delete_alias(fx->client, NULL, "alias/a", &err), 0);
    assert_kms_request(fx, 0, "CreateAlias");
    assert_kms_request(fx, 1, "UpdateAlias");
    assert_kms_request(fx, 2, "DeleteAlias");
    json_t *sent = sent_json(fx, 1);
    assert_string_equal(member(sent, "AliasName"), "alias/a");
    assert_string_equal(member(sent, "TargetKeyId"), "key-2");
    json_decref(sent);
    sent = sent_json(fx, 2);
    assert_int_equal(json_object_size(sent), 1);
    json_decref(sent);
}

static void test_list_aliases_page(void **state)
{
    fixture *fx = *state;
    answer(fx, 200,
           "{\"Aliases\":[{\"AliasName\":\"alias/a\",\"AliasArn\":\"arn:a\",\"TargetKeyId\":\"k1\","
           "\"CreationDate\":100.5,\"LastUpdatedDate\":200},{\"AliasName\":\"alias/aws/ebs\","
           "\"AliasArn\":\"arn:b\"}],\"Truncated\":true,\"NextMarker\":\"m2\"}");
    kms_alias_page page;
    assert_int_equal(kms_list_aliases(fx->client, NULL, "k1", "m1", 50, &page, NULL), 0);
    assert_kms_request(fx, 0, "ListAliases");
    json_t *sent = sent_json(fx, 0);
    assert_string_equal(member(sent, "KeyId"), "k1");
    assert_string_equal(member(sent, "Marker"), "m1");
    assert_int_equal(json_integer_value(json_object_get(sent, "Limit")), 50);
    json_decref(sent);
    assert_int_equal(page.count, 2);
    assert_string_equal(page.aliases[0].alias_name, "alias/a");
    assert_string_equal(page.aliases[0].target_key_id, "k1");
    assert_true(page.aliases[0].creation_date == 100.5);
    assert_true(page.aliases[0].last_updated_date == 200.0);
    assert_string_equal(page.aliases[1].target_key_id, "");
    assert_true(page.truncated);
    assert_string_equal(page.next_marker, "m2");
    kms_alias_page_clear(&page);
}

static void test_list_aliases_defaults_and_bad_page(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"Aliases\":[],\"Truncated\":false}");
    answer(fx, 200, "{\"Aliases\":[],\"Truncated\":true}");
    kms_alias_page page;
    assert_int_equal(kms_list_aliases(fx->client, NULL, NULL, NULL, 0, &page, NULL), 0);
    json_t *sent = sent_json(fx, 0);
    assert_int_equal(json_object_size(sent), 0);
    json_decref(sent);
    assert_int_equal(page.count, 0);
    assert_false(page.truncated);
    kms_alias_page_clear(&page);
    aws_error err;
    assert_int_equal(kms_list_aliases(fx->client, NULL, NULL, NULL, 0, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_null(page.aliases);
}

static void test_list_keys(void **state)
{
    fixture *fx = *state;
    answer(fx, 200,
           "{\"Keys\":[{\"KeyId\":\"k1\",\"KeyArn\":\"arn:k1\"},{\"KeyId\":\"k2\",\"KeyArn\":"
           "\"arn:k2\"}],\"Truncated\":false}");
    kms_key_page page;
    assert_int_equal(kms_list_keys(fx->client, NULL, NULL, 100, &page, NULL), 0);
    assert_kms_request(fx, 0, "ListKeys");
    assert_int_equal(page.count, 2);
    assert_string_equal(page.keys[1].key_id, "k2");
    assert_string_equal(page.keys[1].arn, "arn:k2");
    kms_key_page_clear(&page);
}

static void test_schedule_deletion_and_tags(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"KeyId\":\"arn:k\",\"DeletionDate\":1.7E9,\"PendingWindowInDays\":7}");
    assert_int_equal(kms_schedule_key_deletion(fx->client, NULL, "k", 7, NULL), 0);
    assert_kms_request(fx, 0, "ScheduleKeyDeletion");
    json_t *sent = sent_json(fx, 0);
    assert_int_equal(json_integer_value(json_object_get(sent, "PendingWindowInDays")), 7);
    json_decref(sent);
    kms_tag tag = {"spire-last-used", "2026"};
    assert_int_equal(kms_tag_resource(fx->client, NULL, "k", &tag, 1, NULL), 0);
    assert_kms_request(fx, 1, "TagResource");
    sent = sent_json(fx, 1);
    assert_string_equal(member(json_array_get(json_object_get(sent, "Tags"), 0), "TagKey"),
                        "spire-last-used");
    json_decref(sent);
}

static void test_typed_error_with_request_id(void **state)
{
    fixture *fx = *state;
    fx->f.answers[0] = (canned){.status = 400,
                                .body = "{\"__type\":\"NotFoundException\",\"message\":\"gone\"}",
                                .request_id = "rid-404"};
    fx->f.answer_count = 1;
    kms_key_metadata m;
    aws_error err;
    assert_int_equal(kms_describe_key(fx->client, NULL, "k", &m, &err), -1);
    assert_int_equal(err.status, AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NotFoundException");
    assert_string_equal(err.message, "gone");
    assert_string_equal(err.request_id, "rid-404");
    assert_int_equal(err.http_status, 400);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(fx->f.request_count, 1);
}

static void test_non_json_success_is_bad_response(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "<html>proxy says hi</html>");
    kms_key_page page;
    aws_error err;
    assert_int_equal(kms_list_keys(fx->client, NULL, NULL, 0, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "ListKeys"));
}

static void test_retries_through_the_client(void **state)
{
    fixture *fx = *state;
    answer(fx, 400, "{\"__type\":\"ThrottlingException\",\"message\":\"slow down\"}");
    fx->f.answers[fx->f.answer_count++] = (canned){.failure = AWS_ERR_TRANSPORT};
    answer(fx, 200, "{\"Keys\":[],\"Truncated\":false}");
    kms_key_page page;
    aws_error err;
    assert_int_equal(kms_list_keys(fx->client, NULL, NULL, 0, &page, &err), 0);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(fx->f.request_count, 3);
    assert_int_equal(kms_client_retry_tokens(fx->client), 495);
    kms_key_page_clear(&page);
}

static void test_server_errors_exhaust_attempts(void **state)
{
    fixture *fx = *state;
    answer(fx, 500, "{\"__type\":\"KMSInternalException\"}");
    uint8_t *signature;
    size_t signature_len;
    aws_error err;
    uint8_t digest[32] = {0};
    assert_int_equal(kms_sign(fx->client, NULL, "k", digest, 32, "ECDSA_SHA_256", &signature,
                              &signature_len, &err),
                     -1);
    assert_int_equal(err.status, AWS_ERR_SERVER);
    assert_string_equal(err.code, "KMSInternalException");
    assert_int_equal(err.attempts, 3);
    assert_int_equal(fx->f.request_count, 3);
    assert_null(signature);
}

static void test_session_token_passed_to_transport(void **state)
{
    fixture *fx = *state;
    fx->f.session_token = "token-abc";
    answer(fx, 200, "{\"Keys\":[]}");
    kms_key_page page;
    assert_int_equal(kms_list_keys(fx->client, NULL, NULL, 0, &page, NULL), 0);
    assert_string_equal(fx->f.requests[0].session_token, "token-abc");
    kms_key_page_clear(&page);
}

static void test_cancelled_call(void **state)
{
    fixture *fx = *state;
    atomic_bool cancelled;
    atomic_init(&cancelled, true);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    kms_key_page page;
    aws_error err;
    assert_int_equal(kms_list_keys(fx->client, &ctx, NULL, 0, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CANCELLED);
    assert_int_equal(fx->f.request_count, 0);
}

/* --- clock skew ------------------------------------------------------------------ */

#define SIGNATURE_EXPIRED                                                                          \
    "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: "                  \
    "20270115T080000Z is now earlier than 20270115T081500Z (20270115T082000Z - 5 min.)\"}"
#define NOT_YET_CURRENT                                                                            \
    "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature not yet current: "          \
    "20270115T084000Z is still later than 20270115T082500Z (20270115T082000Z + 5 min.)\"}"

static void skewed_answer(fixture *fx, const char *body, int64_t date_skew)
{
    fx->f.answers[fx->f.answer_count++] =
        (canned){.status = 400, .body = body, .date_skew = date_skew};
}

static int list_keys(fixture *fx, aws_error *err)
{
    kms_key_page page;
    int rc = kms_list_keys(fx->client, NULL, NULL, 0, &page, err);
    if (rc == 0)
        kms_key_page_clear(&page);
    return rc;
}

static void assert_offset_near(int64_t offset, int64_t expected)
{
    if (offset < expected - 2 || offset > expected + 2)
        fail_msg("offset %lld, expected about %lld", (long long)offset, (long long)expected);
}

/* Host 20 minutes fast ("Signature not yet current") or slow ("expired"):
 * one more request signed with AWS's time, and the offset is kept. */
static void test_skew_refusal_is_signed_again_once(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *body;
        int64_t skew;
    } cases[] = {{NOT_YET_CURRENT, -1200}, {SIGNATURE_EXPIRED, 1200}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aws_clock_set_offset(0);
        memset(&fx->f, 0, sizeof fx->f);
        skewed_answer(fx, cases[i].body, cases[i].skew);
        answer(fx, 200, "{\"Keys\":[]}");
        aws_error err;
        assert_int_equal(list_keys(fx, &err), 0);
        assert_int_equal(fx->f.request_count, 2);
        assert_int_equal(err.attempts, 2);
        assert_int_equal(fx->f.requests[0].clock_offset, 0);
        assert_offset_near(fx->f.requests[1].clock_offset, cases[i].skew);
        assert_string_equal(fx->f.requests[0].body, fx->f.requests[1].body);
        /* Later calls sign with the corrected clock from the start. */
        answer(fx, 200, "{\"Keys\":[]}");
        assert_int_equal(list_keys(fx, &err), 0);
        assert_int_equal(fx->f.request_count, 3);
        assert_offset_near(fx->f.requests[2].clock_offset, cases[i].skew);
    }
}

/* The re-signed request is not an attempt and takes no retry token: the
 * same faults after it are retried exactly as without skew. */
static void test_skew_retry_is_outside_attempts_and_tokens(void **state)
{
    fixture *fx = *state;
    answer(fx, 500, "{\"__type\":\"KMSInternalException\"}");
    answer(fx, 500, "{\"__type\":\"KMSInternalException\"}");
    answer(fx, 200, "{\"Keys\":[]}");
    aws_error err;
    assert_int_equal(list_keys(fx, &err), 0);
    int tokens_without_skew = kms_client_retry_tokens(fx->client);
    assert_int_equal(fx->f.request_count, 3);

    memset(&fx->f, 0, sizeof fx->f);
    aws_clock_set_offset(0);
    skewed_answer(fx, SIGNATURE_EXPIRED, 1200);
    answer(fx, 500, "{\"__type\":\"KMSInternalException\"}");
    answer(fx, 500, "{\"__type\":\"KMSInternalException\"}");
    answer(fx, 200, "{\"Keys\":[]}");
    assert_int_equal(list_keys(fx, &err), 0);
    assert_int_equal(fx->f.request_count, 4); /* max_attempts 3, plus the re-signed one */
    assert_int_equal(err.attempts, 4);
    assert_int_equal(kms_client_retry_tokens(fx->client), tokens_without_skew - 5);
}

static void test_skew_retry_happens_once(void **state)
{
    fixture *fx = *state;
    skewed_answer(fx, SIGNATURE_EXPIRED, 1200);
    skewed_answer(fx, SIGNATURE_EXPIRED, 2400); /* the clock moved again: still one retry */
    aws_error err;
    assert_int_equal(list_keys(fx, &err), -1);
    assert_int_equal(fx->f.request_count, 2);
    assert_int_equal(err.status, AWS_ERR_ACCESS_DENIED);
    assert_string_equal(err.code, "InvalidSignatureException");
    assert_non_null(strstr(err.message, "Signature expired"));
}

/* No retry when the answer is no skew refusal, carries no Date, or shows no
 * skew: a wrong secret key stays a plain error. */
static void test_no_retry_without_skew(void **state)
{
    fixture *fx = *state;
    skewed_answer(fx,
                  "{\"__type\":\"InvalidSignatureException\",\"message\":\"The request "
                  "signature we calculated does not match the signature you provided.\"}",
                  0);
    aws_error err;
    assert_int_equal(list_keys(fx, &err), -1);
    assert_int_equal(fx->f.request_count, 1);

    memset(&fx->f, 0, sizeof fx->f);
    skewed_answer(fx, SIGNATURE_EXPIRED, 0); /* no Date header */
    assert_int_equal(list_keys(fx, &err), -1);
    assert_int_equal(fx->f.request_count, 1);
    assert_int_equal(aws_clock_offset(), 0);

    memset(&fx->f, 0, sizeof fx->f);
    skewed_answer(fx, SIGNATURE_EXPIRED, 30); /* the Date shows no real skew */
    assert_int_equal(list_keys(fx, &err), -1);
    assert_int_equal(fx->f.request_count, 1);
    assert_int_equal(aws_clock_offset(), 0);
}

static void test_caller_identity(void **state)
{
    fixture *fx = *state;
    setenv("AWS_ENDPOINT_URL_STS", "http://sts.local:9/", 1);
    aws_client_config config = {.region = "eu-west-1"};
    kms_client_hooks hooks = {
        .send = fake_send, .get_credentials = fake_credentials, .user = &fx->f};
    kms_client *sts = kms_client_new_with_hooks(&config, &hooks, NULL);
    unsetenv("AWS_ENDPOINT_URL_STS");
    assert_non_null(sts);
    answer(fx, 200,
           "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/u</Arn>"
           "<UserId>AIDA1</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
           "</GetCallerIdentityResponse>");
    sts_identity id;
    assert_int_equal(sts_get_caller_identity(sts, NULL, &id, NULL), 0);
    recorded *r = &fx->f.requests[0];
    assert_string_equal(r->url, "http://sts.local:9/");
    assert_string_equal(r->scope, "aws:amz:eu-west-1:sts");
    assert_string_equal(r->body, "Action=GetCallerIdentity&Version=2011-06-15");
    assert_non_null(strstr(r->headers, "Content-Type: application/x-www-form-urlencoded"));
    assert_string_equal(id.account, "123456789012");
    assert_string_equal(id.arn, "arn:aws:iam::1:user/u");
    assert_string_equal(id.user_id, "AIDA1");
    assert_string_equal(kms_client_endpoint(sts), "https://kms.eu-west-1.amazonaws.com");
    kms_client_free(sts);
}

static void test_caller_identity_errors(void **state)
{
    fixture *fx = *state;
    answer(fx, 403,
           "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
           "<Message>bad token</Message></Error><RequestId>r9</RequestId></ErrorResponse>");
    answer(fx, 200, "<GetCallerIdentityResponse/>");
    sts_identity id;
    aws_error err;
    assert_int_equal(sts_get_caller_identity(fx->client, NULL, &id, &err), -1);
    assert_int_equal(err.status, AWS_ERR_ACCESS_DENIED);
    assert_string_equal(err.code, "InvalidClientTokenId");
    assert_string_equal(err.message, "bad token");
    assert_int_equal(sts_get_caller_identity(fx->client, NULL, &id, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
}

/* STS says SignatureDoesNotMatch (query protocol, XML) for the same skew. */
static void test_caller_identity_skew_refusal_is_signed_again(void **state)
{
    fixture *fx = *state;
    skewed_answer(fx,
                  "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
                  "<Message>Signature expired: 20270115T080000Z is now earlier than "
                  "20270115T081500Z (20270115T082000Z - 5 min.)</Message></Error>"
                  "<RequestId>r1</RequestId></ErrorResponse>",
                  1200);
    answer(fx, 200,
           "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/u</Arn>"
           "<UserId>AIDA</UserId><Account>1</Account></GetCallerIdentityResult>"
           "</GetCallerIdentityResponse>");
    sts_identity id;
    aws_error err;
    assert_int_equal(sts_get_caller_identity(fx->client, NULL, &id, &err), 0);
    assert_int_equal(fx->f.request_count, 2);
    assert_offset_near(fx->f.requests[1].clock_offset, 1200);
    assert_string_equal(id.account, "1");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_rejects_bad_region),
        cmocka_unit_test(test_key_spec_names),
        T(test_endpoint_reported),
        T(test_create_key),
        T(test_create_key_minimal_request),
        T(test_describe_key_and_missing_metadata),
        T(test_long_description_is_cut),
        T(test_get_public_key),
        T(test_get_public_key_bad_blob),
        T(test_sign),
        T(test_sign_body_escapes_key_id),
        T(test_alias_operations),
        T(test_list_aliases_page),
        T(test_list_aliases_defaults_and_bad_page),
        T(test_list_keys),
        T(test_schedule_deletion_and_tags),
        T(test_typed_error_with_request_id),
        T(test_non_json_success_is_bad_response),
        T(test_retries_through_the_client),
        T(test_server_errors_exhaust_attempts),
        T(test_session_token_passed_to_transport),
        T(test_cancelled_call),
        T(test_caller_identity),
        T(test_caller_identity_errors),
        T(test_skew_refusal_is_signed_again_once),
        T(test_skew_retry_is_outside_attempts_and_tokens),
        T(test_skew_retry_happens_once),
        T(test_no_retry_without_skew),
        T(test_caller_identity_skew_refusal_is_signed_again),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
