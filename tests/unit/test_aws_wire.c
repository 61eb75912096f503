/* Unit tests for the AWS wire helpers: error answers (JSON 1.1 and XML) to
 * typed aws_error, base64 blobs, JSON field reading and XML tag extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "aws/aws_json.h"

static aws_error map(long http_status, const char *body)
{
    aws_error err;
    aws_error_clear(&err);
    err.attempts = 2;
    aws_error_from_answer("DescribeKey", http_status, body, "req-123", &err);
    return err;
}

static void test_typed_codes_from_json_bodies(void **state)
{
    (void)state;
    static const struct {
        long http;
        const char *type;
        aws_status status;
    } cases[] = {
        {400, "NotFoundException", AWS_ERR_NOT_FOUND},
        {400, "com.amazonaws.kms#NotFoundException", AWS_ERR_NOT_FOUND},
        {400, "AlreadyExistsException", AWS_ERR_ALREADY_EXISTS},
        {400, "KMSInvalidStateException", AWS_ERR_INVALID_STATE},
        {400, "DisabledException", AWS_ERR_DISABLED},
        {400, "ThrottlingException", AWS_ERR_THROTTLED},
        {400, "Throttling", AWS_ERR_THROTTLED},
        {400, "ThrottledException", AWS_ERR_THROTTLED},
        {400, "RequestLimitExceeded", AWS_ERR_THROTTLED},
        {429, "TooManyRequestsException", AWS_ERR_THROTTLED},
        {400, "ProvisionedThroughputExceededException", AWS_ERR_THROTTLED},
        {400, "RequestThrottled", AWS_ERR_THROTTLED},
        {503, "SlowDown", AWS_ERR_THROTTLED},
        {400, "PriorRequestNotComplete", AWS_ERR_THROTTLED},
        {400, "AccessDeniedException", AWS_ERR_ACCESS_DENIED},
        {400, "UnrecognizedClientException", AWS_ERR_ACCESS_DENIED},
        {400, "NotAuthorizedException", AWS_ERR_ACCESS_DENIED},
        {400, "InvalidSignatureException", AWS_ERR_ACCESS_DENIED},
        {403, "IncompleteSignature", AWS_ERR_ACCESS_DENIED},
        {400, "ExpiredTokenException", AWS_ERR_ACCESS_DENIED},
        {403, "InvalidClientTokenId", AWS_ERR_ACCESS_DENIED},
        {400, "ValidationException", AWS_ERR_VALIDATION},
        {400, "InvalidKeyUsageException", AWS_ERR_VALIDATION},
        {400, "InvalidAliasNameException", AWS_ERR_VALIDATION},
        {400, "InvalidArnException", AWS_ERR_VALIDATION},
        {400, "InvalidMarkerException", AWS_ERR_VALIDATION},
        {400, "MalformedPolicyDocumentException", AWS_ERR_VALIDATION},
        {400, "LimitExceededException", AWS_ERR_LIMIT_EXCEEDED},
        {400, "UnsupportedOperationException", AWS_ERR_CLIENT},
        {400, "SomethingNewException", AWS_ERR_CLIENT},
        {500, "KMSInternalException", AWS_ERR_SERVER},
        {503, "DependencyTimeoutException", AWS_ERR_SERVER},
        {503, "ServiceUnavailable", AWS_ERR_SERVER},
        {500, "SomethingNewException", AWS_ERR_SERVER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"__type\":\"%s\",\"message\":\"m%zu\"}", cases[i].type, i);
        aws_error err = map(cases[i].http, body);
        const char *hash = strchr(cases[i].type, '#');
        assert_string_equal(err.code, hash ? hash + 1 : cases[i].type);
        if (err.status != cases[i].status)
            fail_msg("%s: got %s", cases[i].type, aws_status_name(err.status));
        char message[16];
        snprintf(message, sizeof message, "m%zu", i);
        assert_string_equal(err.message, message);
        assert_int_equal(err.http_status, cases[i].http);
        assert_string_equal(err.request_id, "req-123");
        assert_int_equal(err.attempts, 2);
    }
}

static void test_capitalised_message_and_suffix(void **state)
{
    (void)state;
    aws_error err = map(400, "{\"__type\":\"NotFoundException:http://internal.amazon.com/coral/\","
                             "\"Message\":\"Key 'arn:aws:kms:us-east-1:1:key/x' does not exist\"}");
    assert_string_equal(err.code, "NotFoundException");
    assert_int_equal(err.status, AWS_ERR_NOT_FOUND);
    assert_string_equal(err.message, "Key 'arn:aws:kms:us-east-1:1:key/x' does not exist");
}

static void test_bodies_without_aws_code(void **state)
{
    (void)state;
    aws_error err = map(502, "<html>Bad Gateway</html>");
    assert_int_equal(err.status, AWS_ERR_SERVER);
    assert_string_equal(err.code, "");
    assert_non_null(strstr(err.message, "DescribeKey"));
    assert_non_null(strstr(err.message, "502"));
    err = map(400, "not json");
    assert_int_equal(err.status, AWS_ERR_CLIENT);
    err = map(403, "");
    assert_int_equal(err.status, AWS_ERR_ACCESS_DENIED);
    err = map(429, NULL);
    assert_int_equal(err.status, AWS_ERR_THROTTLED);
    err = map(400, "{\"message\":\"no type\"}");
    assert_int_equal(err.status, AWS_ERR_CLIENT);
    assert_string_equal(err.message, "no type");
}

static void test_sts_xml_error(void **state)
{
    (void)state;
    aws_error err;
    aws_error_clear(&err);
    aws_error_from_answer("GetCallerIdentity", 403,
                          "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                          "<Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
                          "<Message>The security token &amp; id are invalid.</Message></Error>"
                          "<RequestId>abc-1</RequestId></ErrorResponse>",
                          "", &err);
    assert_int_equal(err.status, AWS_ERR_ACCESS_DENIED);
    assert_string_equal(err.code, "InvalidClientTokenId");
    assert_string_equal(err.message, "The security token & id are invalid.");
    assert_string_equal(err.request_id, "abc-1");
}

static void check_base64_round_trip(const char *data, size_t len, const char *expected)
{
    char *encoded = aws_base64_encode((const uint8_t *)data, len);
    assert_string_equal(encoded, expected);
    uint8_t *decoded = NULL;
    size_t decoded_len = 0;
    assert_int_equal(aws_base64_decode(encoded, &decoded, &decoded_len), 0);
    assert_int_equal(decoded_len, len);
    assert_memory_equal(decoded, data, len);
    free(decoded);
    free(encoded);
}

static void test_base64_padding(void **state)
{
    (void)state;
    check_base64_round_trip("", 0, "");
    check_base64_round_trip("f", 1, "Zg==");
    check_base64_round_trip("fo", 2, "Zm8=");
    check_base64_round_trip("foo", 3, "Zm9v");
    check_base64_round_trip("foob", 4, "Zm9vYg==");
    check_base64_round_trip("\0\xff\0", 3, "AP8A");
}

static void test_base64_rejects_garbage(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(aws_base64_decode("abc", &out, &len), -1);
    assert_int_equal(aws_base64_decode("ab!d", &out, &len), -1);
    assert_null(out);
}

static void test_json_fields(void **state)
{
    (void)state;
    json_t *o = json_loads("{\"s\":\"hello\",\"n\":5,\"t\":1700000000.25,\"b\":true}", 0, NULL);
    char out[8];
    assert_int_equal(aws_json_copy_string(o, "s", true, out, sizeof out), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(aws_json_copy_string(o, "missing", false, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(aws_json_copy_string(o, "missing", true, out, sizeof out), -1);
    assert_int_equal(aws_json_copy_string(o, "n", false, out, sizeof out), -1);
    char tiny[3];
    assert_int_equal(aws_json_copy_string(o, "s", true, tiny, sizeof tiny), -1);
    assert_true(aws_json_timestamp(o, "t") == 1700000000.25);
    assert_true(aws_json_timestamp(o, "n") == 5.0);
    assert_true(aws_json_timestamp(o, "missing") == 0.0);
    assert_true(aws_json_bool(o, "b"));
    assert_false(aws_json_bool(o, "s"));
    json_decref(o);
}

static void test_xml_tags(void **state)
{
    (void)state;
    const char *xml = "<R><Arn>arn:aws:iam::1:user/a&lt;b&gt;</Arn><Account>123</Account></R>";
    char out[64];
    assert_int_equal(aws_xml_tag(xml, "Arn", out, sizeof out), 0);
    assert_string_equal(out, "arn:aws:iam::1:user/a<b>");
    assert_int_equal(aws_xml_tag(xml, "Account", out, sizeof out), 0);
    assert_string_equal(out, "123");
    assert_int_equal(aws_xml_tag(xml, "UserId", out, sizeof out), -1);
    char tiny[3];
    assert_int_equal(aws_xml_tag(xml, "Account", tiny, sizeof tiny), -1);
}

/* An error names itself by AWS's code, or by its status when AWS gave none. */
static void test_error_name(void **state)
{
    (void)state;
    aws_error err;
    aws_error_clear(&err);
    aws_error_from_answer("Sign", 400, "{\"__type\":\"ThrottlingException\"}", "", &err);
    assert_string_equal(aws_error_name(&err), "ThrottlingException");
    aws_error_clear(&err);
    aws_error_set(&err, AWS_ERR_TRANSPORT, "connection refused");
    assert_string_equal(aws_error_name(&err), aws_status_name(AWS_ERR_TRANSPORT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_codes_from_json_bodies),
        cmocka_unit_test(test_capitalised_message_and_suffix),
        cmocka_unit_test(test_bodies_without_aws_code),
        cmocka_unit_test(test_sts_xml_error),
        cmocka_unit_test(test_error_name),
        cmocka_unit_test(test_base64_padding),
        cmocka_unit_test(test_base64_rejects_garbage),
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_xml_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
