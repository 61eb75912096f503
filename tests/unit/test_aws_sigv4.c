/* Unit tests for the SigV4 signer: AWS's published get-vanilla vector, a KMS
 * style POST checked against botocore's signer, the signing-key cache across
 * days and secrets, and refusals (bad scope, bad URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "aws/sigv4.h"

/* 2015-08-30T12:36:00Z and 2026-11-28T22:19:40Z */
#define VANILLA_TIME ((time_t)1440938160)
#define POST_TIME    ((time_t)1795904380)

static const char *const kms_headers[] = {
    "X-Amz-Target: TrentService.Sign", "Content-Type: application/x-amz-json-1.1",
    "User-Agent: spire-aws-kms/1.0", "X-Amz-Security-Token: tok  en", NULL};

static aws_sigv4_input kms_post(time_t now, const char *secret)
{
    static const char body[] = "{\"KeyId\":\"k\",\"Message\":\"AA==\"}";
    return (aws_sigv4_input){.method = "POST",
                             .url = "http://127.0.0.1:4566/",
                             .headers = kms_headers,
                             .body = body,
                             .body_len = sizeof body - 1,
                             .scope = "aws:amz:us-east-2:kms",
                             .access_key_id = "AKIDUNIT",
                             .secret_access_key = secret,
                             .now = now};
}

static void test_aws_get_vanilla_vector(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_input input = {.method = "GET",
                             .url = "https://example.amazonaws.com",
                             .scope = "aws:amz:us-east-1:service",
                             .access_key_id = "AKIDEXAMPLE",
                             .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                             .now = VANILLA_TIME};
    aws_sigv4_headers out;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), 0);
    assert_string_equal(out.host, "Host: example.amazonaws.com");
    assert_string_equal(out.date, "X-Amz-Date: 20150830T123600Z");
    assert_string_equal(
        out.authorization,
        "Authorization: AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    aws_sigv4_cache_destroy(&cache);
}

/* Expected values computed with botocore's SigV4Auth over the same headers. */
static void test_kms_post_matches_botocore(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_input input = kms_post(POST_TIME, "very-secret-key");
    aws_sigv4_headers out;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), 0);
    assert_string_equal(out.host, "Host: 127.0.0.1:4566");
    assert_string_equal(
        out.authorization,
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDUNIT/20261128/us-east-2/kms/aws4_request, "
        "SignedHeaders=content-type;host;user-agent;x-amz-date;x-amz-security-token;x-amz-target, "
        "Signature=848cfec48e9b74563bba5454eb421888e8707c8d3f1c0fe64d7f67689ee76feb");
    /* a second signature comes from the cached key and is the same */
    aws_sigv4_headers again;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &again), 0);
    assert_string_equal(again.authorization, out.authorization);
    aws_sigv4_cache_destroy(&cache);
}

static void test_cache_follows_day_and_secret(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_headers first, next_day, other_secret, back;
    aws_sigv4_input input = kms_post(POST_TIME, "very-secret-key");
    assert_int_equal(aws_sigv4_sign(&cache, &input, &first), 0);
    input.now = POST_TIME + 86400;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &next_day), 0);
    assert_non_null(strstr(next_day.authorization, "/20261129/us-east-2/kms/"));
    input = kms_post(POST_TIME, "another-secret");
    assert_int_equal(aws_sigv4_sign(&cache, &input, &other_secret), 0);
    assert_string_not_equal(other_secret.authorization, first.authorization);
    input = kms_post(POST_TIME, "very-secret-key");
    assert_int_equal(aws_sigv4_sign(&cache, &input, &back), 0);
    assert_string_equal(back.authorization, first.authorization);
    aws_sigv4_cache_destroy(&cache);
}

static void test_refusals(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_headers out;
    aws_sigv4_input input = kms_post(POST_TIME, "very-secret-key");
    input.scope = "kms";
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), -1);
    input.scope = "aws:amz:us-east-2:";
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), -1);
    input = kms_post(POST_TIME, "very-secret-key");
    input.url = "no-scheme/";
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), -1);
    static const char *const bad_headers[] = {"no colon here", NULL};
    input = kms_post(POST_TIME, "very-secret-key");
    input.headers = bad_headers;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &out), -1);
    aws_sigv4_cache_destroy(&cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_get_vanilla_vector),
        cmocka_unit_test(test_kms_post_matches_botocore),
        cmocka_unit_test(test_cache_follows_day_and_secret),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
