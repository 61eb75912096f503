/* Unit tests for the Resource Groups Tagging API client (tagging.h) over a
 * fake transport: the GetResources request (target, endpoint, SigV4 scope,
 * members), answer decoding (resources, tags, the end-of-listing token), bad
 * answers, input checks, error typing, and that retries draw on the same
 * retry-token bucket as KMS calls. Also KMS's UntagResource and
 * ListResourceTags, which tag-based discovery uses next to GetResources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/kms_internal.h"
#include "aws/tagging.h"

/* --- fake transport --------------------------------------------------------- */

typedef struct {
    long status; /* 0: transport failure */
    const char *body;
} canned;

typedef struct {
    char url[256];
    char headers[1024];
    char body[4096];
    char scope[96];
} recorded;

typedef struct {
    canned answers[8];
    int answer_count;
    recorded requests[8];
    int request_count;
    const char *environment[8]; /* "NAME=value": the SDK settings' environment */
} fake;

static int fake_send(void *user, const aws_http_request *request, aws_http_response *response,
                     aws_error *err)
{
    fake *f = user;
    assert_true(f->request_count < 8);
    recorded *r = &f->requests[f->request_count];
    snprintf(r->url, sizeof r->url, "%s", request->url);
    snprintf(r->body, sizeof r->body, "%.*s", (int)request->body_len, request->body);
    snprintf(r->scope, sizeof r->scope, "aws:amz:%s:%s", request->sigv4_scope->region,
             request->sigv4_scope->service);
    for (const char *const *h = request->headers; h && *h; h++) {
        strncat(r->headers, *h, sizeof r->headers - strlen(r->headers) - 2);
        strcat(r->headers, "\n");
    }
    int index = f->request_count++;
    const canned *a = &f->answers[index < f->answer_count ? index : f->answer_count - 1];
    memset(response, 0, sizeof *response);
    if (a->status == 0) {
        aws_error_set(err, AWS_ERR_TRANSPORT, "fake transport failure");
        return -1;
    }
    response->status = a->status;
    response->body = strdup(a->body);
    response->body_len = strlen(response->body);
    snprintf(response->request_id, sizeof response->request_id, "rid-%d", index + 1);
    return 0;
}

static int fake_credentials(void *user, aws_credentials *out, aws_error *err)
{
    (void)user;
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->access_key_id, sizeof out->access_key_id, "AKIDTEST");
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "secret-test");
    return 0;
}

/* The fake's environment: only the variables the test put there. */
static const char *fake_getenv(void *ctx, const char *name)
{
    fake *f = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < 8 && f->environment[i] != NULL; i++) {
        if (strncmp(f->environment[i], name, len) == 0 && f->environment[i][len] == '=')
            return f->environment[i] + len + 1;
    }
    return NULL;
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

static kms_client *new_client(fake *f, const aws_client_config *config)
{
    kms_client_hooks hooks = {.send = fake_send,
                              .get_credentials = fake_credentials,
                              .user = f,
                              .retry = {.random = zero_random, .sleep_ms = no_sleep},
                              .env = {.getenv = fake_getenv, .ctx = f}};
    aws_error err;
    aws_error_clear(&err);
    kms_client *client = kms_client_new_with_hooks(config, &hooks, &err);
    if (client == NULL)
        fail_msg("client: %s", err.message);
    return client;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    /* Endpoints come from the process environment (aws/endpoints.h). */
    setenv("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API", "http://tagging.local:7/", 1);
    aws_client_config config = {.region = "us-east-2", .endpoint = "http://kms.local:1/"};
    fx->client = new_client(&fx->f, &config);
    unsetenv("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kms_client_free(fx->client);
    free(fx);
    return 0;
}

static void answer(fixture *fx, long status, const char *body)
{
    fx->f.answers[fx->f.answer_count++] = (canned){.status = status, .body = body};
}

static json_t *sent_json(fixture *fx, int i)
{
    json_t *body = json_loads(fx->f.requests[i].body, 0, NULL);
    assert_non_null(body);
    return body;
}

static const char *const KMS_KEY_TYPE[] = {"kms:key"};

/* --- GetResources: the request ------------------------------------------------------ */

static void test_request_target_endpoint_scope_and_members(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"PaginationToken\":\"\",\"ResourceTagMappingList\":[]}");
    const char *const td[] = {"example.org"};
    const char *const active[] = {"true"};
    tagging_tag_filter filters[] = {
        {"spire-server-td", td, 1}, {"spire-active", active, 1}, {"spire-key-id", NULL, 0}};
    tagging_get_resources_input input = {.resource_types = KMS_KEY_TYPE,
                                         .resource_type_count = 1,
                                         .tag_filters = filters,
                                         .tag_filter_count = 3,
                                         .pagination_token = "tok-1",
                                         .resources_per_page = 100};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), 0);
    recorded *r = &fx->f.requests[0];
    assert_string_equal(r->url, "http://tagging.local:7");
    assert_string_equal(r->scope, "aws:amz:us-east-2:tagging");
    assert_non_null(
        strstr(r->headers, "X-Amz-Target: ResourceGroupsTaggingAPI_20170126.GetResources\n"));
    assert_non_null(strstr(r->headers, "Content-Type: application/x-amz-json-1.1\n"));
    json_t *sent = sent_json(fx, 0);
    json_t *expected =
        json_loads("{\"ResourceTypeFilters\":[\"kms:key\"],"
                   "\"TagFilters\":[{\"Key\":\"spire-server-td\",\"Values\":[\"example.org\"]},"
                   "{\"Key\":\"spire-active\",\"Values\":[\"true\"]},{\"Key\":\"spire-key-id\"}],"
                   "\"ResourcesPerPage\":100,\"PaginationToken\":\"tok-1\"}",
                   0, NULL);
    assert_true(json_equal(sent, expected));
    json_decref(sent);
    json_decref(expected);
    assert_int_equal(page.count, 0);
    assert_string_equal(page.next_token, "");
    assert_string_equal(err.request_id, "rid-1");
    tagging_resource_page_clear(&page);
}

static void test_first_page_without_options_sends_an_empty_object(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{}");
    tagging_get_resources_input input = {.pagination_token = ""};
    tagging_resource_page page;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, NULL), 0);
    assert_string_equal(fx->f.requests[0].body, "{}");
    assert_int_equal(page.count, 0);
    tagging_resource_page_clear(&page);
}

static void test_bad_input_is_refused_before_any_request(void **state)
{
    fixture *fx = *state;
    const char *const many[21] = {"v"};
    tagging_tag_filter too_many_values = {"k", many, 21};
    tagging_tag_filter no_key = {NULL, NULL, 0};
    tagging_get_resources_input inputs[] = {
        {.resources_per_page = 101},
        {.resources_per_page = -1},
        {.tag_filters = &too_many_values, .tag_filter_count = 1},
        {.tag_filters = &no_key, .tag_filter_count = 1},
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        tagging_resource_page page;
        aws_error err;
        assert_int_equal(tagging_get_resources(fx->client, NULL, &inputs[i], &page, &err), -1);
        assert_int_equal(err.status, AWS_ERR_VALIDATION);
        assert_non_null(strstr(err.message, "GetResources"));
    }
    assert_int_equal(fx->f.request_count, 0);
}

static void test_invalid_utf8_is_an_encoding_error(void **state)
{
    fixture *fx = *state;
    const char *const bad[] = {"\xff\xfe"};
    tagging_tag_filter filter = {"spire-server-td", bad, 1};
    tagging_get_resources_input input = {.tag_filters = &filter, .tag_filter_count = 1};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_INTERNAL);
    assert_int_equal(fx->f.request_count, 0);
}

/* --- GetResources: the answer ------------------------------------------------------- */

#define ARN1 "arn:aws:kms:us-east-2:111122223333:key/11111111-1111-1111-1111-111111111111"
#define ARN2 "arn:aws:kms:us-east-2:111122223333:key/22222222-2222-2222-2222-222222222222"

static void test_answer_resources_tags_and_token(void **state)
{
    fixture *fx = *state;
    answer(fx, 200,
           "{\"PaginationToken\":\"next-page\",\"ResourceTagMappingList\":["
           "{\"ResourceARN\":\"" ARN1
           "\",\"Tags\":[{\"Key\":\"spire-key-id\",\"Value\":\"x509-CA-A\"},"
           "{\"Key\":\"spire-last-update\",\"Value\":\"1767225600\"},{\"Key\":\"empty\",\"Value\":"
           "\"\"}]},"
           "{\"ResourceARN\":\"" ARN2 "\",\"Tags\":[]},"
           "{\"ResourceARN\":\"" ARN2 "x\",\"ComplianceDetails\":{}}]}");
    tagging_get_resources_input input = {0};
    tagging_resource_page page;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, NULL), 0);
    assert_int_equal(page.count, 3);
    assert_string_equal(page.next_token, "next-page");
    assert_string_equal(page.resources[0].arn, ARN1);
    assert_int_equal(page.resources[0].tags.count, 3);
    assert_string_equal(aws_tag_set_get(&page.resources[0].tags, "spire-key-id"), "x509-CA-A");
    assert_string_equal(aws_tag_set_get(&page.resources[0].tags, "spire-last-update"),
                        "1767225600");
    assert_string_equal(aws_tag_set_get(&page.resources[0].tags, "empty"), "");
    assert_null(aws_tag_set_get(&page.resources[0].tags, "spire-active"));
    assert_int_equal(page.resources[1].tags.count, 0);
    assert_int_equal(page.resources[2].tags.count, 0);
    tagging_resource_page_clear(&page);
    assert_null(page.resources);
}

static void test_null_or_absent_token_ends_the_listing(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"PaginationToken\":null,\"ResourceTagMappingList\":[]}");
    answer(fx, 200, "{\"ResourceTagMappingList\":[]}");
    tagging_get_resources_input input = {0};
    for (int i = 0; i < 2; i++) {
        tagging_resource_page page;
        assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, NULL), 0);
        assert_string_equal(page.next_token, "");
        tagging_resource_page_clear(&page);
    }
}

static void test_malformed_answers_are_bad_responses(void **state)
{
    fixture *fx = *state;
    static const char *const bodies[] = {
        "{\"ResourceTagMappingList\":{}}",
        "{\"ResourceTagMappingList\":[{\"Tags\":[]}]}",
        "{\"ResourceTagMappingList\":[{\"ResourceARN\":\"\"}]}",
        "{\"ResourceTagMappingList\":[{\"ResourceARN\":\"" ARN1 "\",\"Tags\":[{\"Key\":\"k\"}]}]}",
        "{\"ResourceTagMappingList\":[{\"ResourceARN\":\"" ARN1
        "\",\"Tags\":[{\"Value\":\"v\"}]}]}",
        "{\"ResourceTagMappingList\":[{\"ResourceARN\":\"" ARN1 "\",\"Tags\":\"k=v\"}]}",
        "{\"ResourceTagMappingList\":[],\"PaginationToken\":7}",
        "[]",
    };
    size_t count = sizeof bodies / sizeof bodies[0];
    for (size_t i = 0; i < count; i++)
        answer(fx, 200, bodies[i]);
    tagging_get_resources_input input = {0};
    for (size_t i = 0; i < count; i++) {
        tagging_resource_page page;
        aws_error err;
        assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
        assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
        assert_non_null(strstr(err.message, "GetResources"));
        assert_null(page.resources);
        assert_int_equal(page.count, 0);
    }
}

/* --- GetResources: errors and retries ------------------------------------------------ */

static void test_access_denied_is_typed(void **state)
{
    fixture *fx = *state;
    answer(fx, 400,
           "{\"__type\":\"AccessDeniedException\",\"Message\":\"User: arn:aws:iam::1:role/r is not "
           "authorized to perform: tag:GetResources\"}");
    tagging_get_resources_input input = {0};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_ACCESS_DENIED);
    assert_string_equal(err.code, "AccessDeniedException");
    assert_non_null(strstr(err.message, "tag:GetResources"));
    assert_int_equal(err.attempts, 1);
}

static void test_expired_token_and_bad_parameter_are_not_retried(void **state)
{
    fixture *fx = *state;
    answer(fx, 400, "{\"__type\":\"PaginationTokenExpiredException\",\"Message\":\"expired\"}");
    answer(fx, 400, "{\"__type\":\"InvalidParameterException\",\"Message\":\"bad\"}");
    tagging_get_resources_input input = {.pagination_token = "old"};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CLIENT);
    assert_string_equal(err.code, "PaginationTokenExpiredException");
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_VALIDATION);
    assert_int_equal(fx->f.request_count, 2);
}

static void test_throttling_retried_on_the_shared_bucket(void **state)
{
    fixture *fx = *state;
    answer(fx, 400, "{\"__type\":\"ThrottledException\",\"Message\":\"Rate exceeded\"}");
    answer(fx, 500, "{\"__type\":\"InternalServiceException\",\"Message\":\"oops\"}");
    answer(fx, 200, "{\"ResourceTagMappingList\":[]}");
    tagging_get_resources_input input = {0};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), 0);
    assert_int_equal(err.attempts, 3);
    tagging_resource_page_clear(&page);
    /* two retries cost 5 each, the success gives 5 back: the KMS client's bucket */
    assert_int_equal(kms_client_retry_tokens(fx->client), 495);
    answer(fx, 200, "{\"Keys\":[]}");
    kms_key_page keys;
    assert_int_equal(kms_list_keys(fx->client, NULL, NULL, 0, &keys, NULL), 0);
    assert_string_equal(fx->f.requests[3].url, "http://kms.local:1");
    assert_string_equal(fx->f.requests[3].scope, "aws:amz:us-east-2:kms");
    kms_key_page_clear(&keys);
}

static void test_server_errors_exhaust_attempts(void **state)
{
    fixture *fx = *state;
    answer(fx, 503, "{\"__type\":\"ServiceUnavailable\"}");
    tagging_get_resources_input input = {0};
    tagging_resource_page page;
    aws_error err;
    assert_int_equal(tagging_get_resources(fx->client, NULL, &input, &page, &err), -1);
    assert_int_equal(err.status, AWS_ERR_SERVER);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(fx->f.request_count, 3);
}

/* --- endpoints ------------------------------------------------------------------------ */

static void test_tagging_endpoint_sources(void **state)
{
    (void)state;
    fake f = {0};
    aws_client_config config = {.region = "cn-north-1", .endpoint = "http://kms.vpce:1"};
    kms_client *client = new_client(&f, &config);
    kms_client_info info;
    kms_client_get_info(client, &info);
    assert_string_equal(info.kms_endpoint, "http://kms.vpce:1");
    assert_string_equal(info.tagging_endpoint, "https://tagging.cn-north-1.amazonaws.com.cn");
    kms_client_free(client);

    setenv("AWS_ENDPOINT_URL", "http://everything:2/", 1);
    config = (aws_client_config){.region = "us-east-1", .use_fips_endpoint = true};
    client = new_client(&f, &config);
    unsetenv("AWS_ENDPOINT_URL");
    kms_client_get_info(client, &info);
    assert_string_equal(info.tagging_endpoint, "http://everything:2");
    assert_string_equal(info.kms_endpoint, "http://everything:2");
    kms_client_free(client);

    client = new_client(&f, &config);
    kms_client_get_info(client, &info);
    assert_string_equal(info.tagging_endpoint, "https://tagging-fips.us-east-1.amazonaws.com");
    assert_string_equal(info.kms_endpoint, "https://kms-fips.us-east-1.amazonaws.com");
    kms_client_free(client);
}

/* --- KMS UntagResource and ListResourceTags -------------------------------------------- */

static void test_untag_resource_request(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "");
    const char *const keys[] = {"spire-active", "spire-last-update"};
    assert_int_equal(kms_untag_resource(fx->client, NULL, ARN1, keys, 2, NULL), 0);
    recorded *r = &fx->f.requests[0];
    assert_non_null(strstr(r->headers, "X-Amz-Target: TrentService.UntagResource\n"));
    assert_string_equal(r->url, "http://kms.local:1");
    json_t *sent = sent_json(fx, 0);
    json_t *expected =
        json_pack("{s:s, s:[s,s]}", "KeyId", ARN1, "TagKeys", "spire-active", "spire-last-update");
    assert_true(json_equal(sent, expected));
    json_decref(sent);
    json_decref(expected);
}

static void test_untag_pending_deletion_key_is_invalid_state(void **state)
{
    fixture *fx = *state;
    answer(fx, 400,
           "{\"__type\":\"KMSInvalidStateException\",\"message\":\"" ARN1
           " is pending deletion.\"}");
    const char *const keys[] = {"spire-active"};
    aws_error err;
    assert_int_equal(kms_untag_resource(fx->client, NULL, ARN1, keys, 1, &err), -1);
    assert_int_equal(err.status, AWS_ERR_INVALID_STATE);
    assert_int_equal(fx->f.request_count, 1);
}

static void test_list_resource_tags_page(void **state)
{
    fixture *fx = *state;
    answer(fx, 200,
           "{\"Tags\":[{\"TagKey\":\"spire-server-td\",\"TagValue\":\"example.org\"},"
           "{\"TagKey\":\"spire-active\",\"TagValue\":\"true\"}],\"Truncated\":true,"
           "\"NextMarker\":\"m2\"}");
    answer(fx, 200, "{\"Tags\":[],\"Truncated\":false}");
    kms_tag_page page;
    assert_int_equal(kms_list_resource_tags(fx->client, NULL, ARN1, "m1", 2, &page, NULL), 0);
    json_t *sent = sent_json(fx, 0);
    json_t *expected = json_pack("{s:s, s:i, s:s}", "KeyId", ARN1, "Limit", 2, "Marker", "m1");
    assert_true(json_equal(sent, expected));
    json_decref(sent);
    json_decref(expected);
    assert_int_equal(page.tags.count, 2);
    assert_string_equal(aws_tag_set_get(&page.tags, "spire-server-td"), "example.org");
    assert_true(page.truncated);
    assert_string_equal(page.next_marker, "m2");
    kms_tag_page_clear(&page);
    assert_int_equal(kms_list_resource_tags(fx->client, NULL, ARN1, NULL, 0, &page, NULL), 0);
    assert_string_equal(fx->f.requests[1].body, "{\"KeyId\":\"" ARN1 "\"}");
    assert_false(page.truncated);
    kms_tag_page_clear(&page);
}

static void test_list_resource_tags_malformed(void **state)
{
    fixture *fx = *state;
    answer(fx, 200, "{\"Tags\":[{\"TagKey\":\"k\"}]}");
    answer(fx, 200, "{\"Tags\":[],\"Truncated\":true}");
    kms_tag_page page;
    aws_error err;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kms_list_resource_tags(fx->client, NULL, ARN1, NULL, 0, &page, &err), -1);
        assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
        assert_int_equal(page.tags.count, 0);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_request_target_endpoint_scope_and_members),
        T(test_first_page_without_options_sends_an_empty_object),
        T(test_bad_input_is_refused_before_any_request),
        T(test_invalid_utf8_is_an_encoding_error),
        T(test_answer_resources_tags_and_token),
        T(test_null_or_absent_token_ends_the_listing),
        T(test_malformed_answers_are_bad_responses),
        T(test_access_denied_is_typed),
        T(test_expired_token_and_bad_parameter_are_not_retried),
        T(test_throttling_retried_on_the_shared_bucket),
        T(test_server_errors_exhaust_attempts),
        cmocka_unit_test(test_tagging_endpoint_sources),
        T(test_untag_resource_request),
        T(test_untag_pending_deletion_key_is_invalid_state),
        T(test_list_resource_tags_page),
        T(test_list_resource_tags_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
