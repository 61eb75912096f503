/* Unit tests for the SigV4 signer: AWS's published get-vanilla vector, a KMS
 * style POST checked against botocore's signer (User-Agent sent but not
 * signed, as botocore leaves it out), the signing-key cache across days,
 * secrets and scopes, and refusals (bad scope, bad URL, bad header). */
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

static aws_sigv4_scope scope_of(const char *region, const char *service)
{
    aws_sigv4_scope scope;
    assert_int_equal(aws_sigv4_scope_init(&scope, region, service), 0);
    return scope;
}

static aws_sigv4_scope kms_scope;

static aws_sigv4_input kms_post(time_t now, const char *secret)
{
    kms_scope = scope_of("us-east-2", "kms");
    static const char body[] = "{\"KeyId\":\"k\",\"Message\":\"AA==\"}";
    return (aws_sigv4_input){.method = "POST",
                             .url = "http://127.0.0.1:4566/",
                             .headers = kms_headers,
                             .body = body,
                             .body_len = sizeof body - 1,
                             .scope = &kms_scope,
                             .access_key_id = "AKIDUNIT",
                             .secret_access_key = secret,
                             .now = now};
}

static void test_aws_get_vanilla_vector(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_scope scope = scope_of("us-east-1", "service");
    aws_sigv4_input input = {.method = "GET",
                             .url = "https://example.amazonaws.com",
                             .scope = &scope,
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

/* Expected values computed with botocore's SigV4Auth over the same headers
 * (botocore leaves User-Agent out of SignedHeaders; so do we). */
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
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
        "Signature=312735a044099b287220e2525737c8b0bc5ba0477c92d1927e66186d68622e68");
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
    aws_sigv4_scope sts = scope_of("us-east-2", "sts");
    aws_sigv4_headers other_scope;
    input.scope = &sts;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &other_scope), 0);
    assert_non_null(strstr(other_scope.authorization, "/20261128/us-east-2/sts/aws4_request"));
    assert_string_not_equal(strstr(other_scope.authorization, "Signature="),
                            strstr(first.authorization, "Signature="));
    aws_sigv4_cache_destroy(&cache);
}

static void test_refusals(void **state)
{
    (void)state;
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_headers out;
    aws_sigv4_scope scope;
    assert_int_equal(aws_sigv4_scope_init(&scope, "us-east-2", ""), -1);
    assert_int_equal(aws_sigv4_scope_init(&scope, "", "kms"), -1);
    assert_int_equal(
        aws_sigv4_scope_init(&scope, "a-region-name-far-longer-than-any-aws-region", "kms"), -1);
    aws_sigv4_input input = kms_post(POST_TIME, "very-secret-key");
    input.scope = NULL;
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

/* Headers intermediaries may rewrite are sent but never signed: changing
 * them changes nothing in the signature. */
static void test_rewritable_headers_are_not_signed(void **state)
{
    (void)state;
    assert_false(aws_sigv4_signs_header("User-Agent", 10));
    assert_false(aws_sigv4_signs_header("expect", 6));
    assert_false(aws_sigv4_signs_header("X-Amzn-Trace-Id", 15));
    assert_true(aws_sigv4_signs_header("X-Amz-Target", 12));
    assert_true(aws_sigv4_signs_header("User-Agen", 9));
    aws_sigv4_cache cache;
    aws_sigv4_cache_init(&cache);
    aws_sigv4_input input = kms_post(POST_TIME, "very-secret-key");
    aws_sigv4_headers with_agent, other_agent, without;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &with_agent), 0);
    static const char *const rewritten[] = {"X-Amz-Target: TrentService.Sign",
                                            "Content-Type: application/x-amz-json-1.1",
                                            "user-agent: some-proxy/2.0",
                                            "Expect: 100-continue",
                                            "X-Amzn-Trace-Id: Root=1-abc",
                                            "X-Amz-Security-Token: tok  en",
                                            NULL};
    input.headers = rewritten;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &other_agent), 0);
    static const char *const no_agent[] = {"X-Amz-Target: TrentService.Sign",
                                           "Content-Type: application/x-amz-json-1.1",
                                           "X-Amz-Security-Token: tok  en", NULL};
    input.headers = no_agent;
    assert_int_equal(aws_sigv4_sign(&cache, &input, &without), 0);
    assert_string_equal(other_agent.authorization, with_agent.authorization);
    assert_string_equal(without.authorization, with_agent.authorization);
    assert_null(strstr(with_agent.authorization, "user-agent"));
    aws_sigv4_cache_destroy(&cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_get_vanilla_vector),
        cmocka_unit_test(test_kms_post_matches_botocore),
        cmocka_unit_test(test_cache_follows_day_and_secret),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rewritable_headers_are_not_signed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
