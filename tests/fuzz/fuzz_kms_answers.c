/* libFuzzer target: arbitrary bytes as the answer to every KMS operation and
 * to STS GetCallerIdentity, through the typed client (kms.h) with its HTTP
 * exchange replaced: the first byte picks the operation, the second the HTTP
 * status (2xx answers go to the decoders, others to the JSON/XML error
 * parser and the retry classifier), the rest is the body. The body also goes
 * through the HTTP Date parser of the clock-skew correction. Any crash,
 * sanitizer report or leak is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"
#include "aws/kms_internal.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *body;
    size_t len;
    long status;
} canned;

static int send_canned(void *user, const aws_http_request *request, aws_http_response *response,
                       aws_error *err)
{
    (void)request;
    (void)err;
    const canned *answer = user;
    memset(response, 0, sizeof *response);
    response->status = answer->status;
    response->body = malloc(answer->len + 1);
    if (response->body == NULL)
        return -1;
    memcpy(response->body, answer->body, answer->len);
    response->body[answer->len] = '\0';
    response->body_len = answer->len;
    return 0;
}

static int static_credentials(void *user, aws_credentials *out, aws_error *err)
{
    (void)user;
    (void)err;
    memset(out, 0, sizeof *out);
    strcpy(out->access_key_id, "AKIDFUZZ");
    strcpy(out->secret_access_key, "fuzz-secret");
    return 0;
}

static int no_sleep(void *user, int64_t ms, const atomic_bool *cancelled)
{
    (void)user;
    (void)ms;
    (void)cancelled;
    return 0;
}

static void run_operation(kms_client *client, unsigned which)
{
    aws_error err;
    kms_key_metadata metadata;
    switch (which % 10) {
    case 0: {
        kms_create_key_input input = {.key_spec = KMS_KEY_SPEC_ECC_NIST_P256, .description = "d"};
        kms_create_key(client, NULL, &input, &metadata, &err);
        break;
    }
    case 1:
        kms_describe_key(client, NULL, "alias/x", &metadata, &err);
        break;
    case 2: {
        kms_public_key key;
        if (kms_get_public_key(client, NULL, "k", &key, &err) == 0)
            kms_public_key_clear(&key);
        break;
    }
    case 3: {
        uint8_t digest[32] = {0}, *signature = NULL;
        size_t signature_len = 0;
        if (kms_sign(client, NULL, "k", digest, sizeof digest, "ECDSA_SHA_256", &signature,
                     &signature_len, &err) == 0)
            free(signature);
        break;
    }
    case 4: {
        kms_alias_page page;
        if (kms_list_aliases(client, NULL, NULL, NULL, 0, &page, &err) == 0)
            kms_alias_page_clear(&page);
        break;
    }
    case 5: {
        kms_key_page page;
        if (kms_list_keys(client, NULL, NULL, 0, &page, &err) == 0)
            kms_key_page_clear(&page);
        break;
    }
    case 6:
        kms_update_alias(client, NULL, "alias/a", "k", &err);
        break;
    case 7:
        kms_schedule_key_deletion(client, NULL, "k", 7, &err);
        break;
    case 8: {
        kms_tag tag = {"k", "v"};
        kms_tag_resource(client, NULL, "k", &tag, 1, &err);
        break;
    }
    default: {
        sts_identity identity;
        sts_get_caller_identity(client, NULL, &identity, &err);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 200, 200, 400, 403, 404, 429, 500, 503, 301};
    log_set_level(LOG_ERROR);
    if (size < 2)
        return 0;
    canned answer = {.body = data + 2,
                     .len = size - 2,
                     .status = statuses[data[1] % (sizeof statuses / sizeof statuses[0])]};
    kms_client_hooks hooks = {.send = send_canned,
                              .get_credentials = static_credentials,
                              .user = &answer,
                              .retry = {.sleep_ms = no_sleep}};
    aws_client_config config = {
        .region = "us-east-2", .endpoint = "http://127.0.0.1:1", .max_attempts = 2};
    aws_error err;
    kms_client *client = kms_client_new_with_hooks(&config, &hooks, &err);
    if (client == NULL)
        return 0;
    run_operation(client, data[0]);
    kms_client_free(client);

    char date[96];
    size_t date_len = answer.len < sizeof date - 1 ? answer.len : sizeof date - 1;
    memcpy(date, answer.body, date_len);
    date[date_len] = '\0';
    int64_t when;
    aws_clock_parse_http_date(date, &when);
    return 0;
}
