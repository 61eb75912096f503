/* Unit tests for the credential answer parsers: ISO 8601 expirations, STS
 * XML (credentials and errors), the container / IMDS / credential_process
 * JSON, and form encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aws/credentials_internal.h"

static void iso8601_forms(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(aws_cred_parse_iso8601("2026-01-02T03:04:05Z", &t), 0);
    assert_int_equal(t, 1767323045);
    assert_int_equal(aws_cred_parse_iso8601("2026-01-02T03:04:05.123456Z", &t), 0);
    assert_int_equal(t, 1767323045);
    assert_int_equal(aws_cred_parse_iso8601("2026-01-02T04:04:05+01:00", &t), 0);
    assert_int_equal(t, 1767323045);
    assert_int_equal(aws_cred_parse_iso8601("2026-01-01T22:04:05-0500", &t), 0);
    assert_int_equal(t, 1767323045);
    assert_int_equal(aws_cred_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
}

static void iso8601_rejects(void **state)
{
    (void)state;
    int64_t t = 0;
    const char *bad[] = {"",
                         "2026-01-02",
                         "2026-01-02T03:04:05",
                         "2026-13-02T03:04:05Z",
                         "2026-01-02T03:04:05ZX",
                         "2026-01-02T03:04:05.Z",
                         "2026-01-02T25:04:05Z",
                         "26-01-02T03:04:05Z",
                         "2026-01-02T03:04:05+1:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(aws_cred_parse_iso8601(bad[i], &t), -1);
    assert_int_equal(aws_cred_parse_iso8601(NULL, &t), -1);
}

static void iso8601_round_trip(void **state)
{
    (void)state;
    char text[32];
    aws_cred_format_iso8601(1767323045, text, sizeof text);
    assert_string_equal(text, "2026-01-02T03:04:05Z");
}

static const char STS_OK[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>x</SubjectFromWebIdentityToken>"
    "<AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>"
    "<Credentials>\n  <AccessKeyId>ASIAEXAMPLE</AccessKeyId>"
    "<SecretAccessKey>se/cr+et&amp;=</SecretAccessKey>"
    "<SessionToken>to&lt;ken&gt;</SessionToken>"
    "<Expiration>2026-01-02T03:04:05Z</Expiration></Credentials>"
    "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

static void sts_credentials(void **state)
{
    (void)state;
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_parse_sts_xml(STS_OK, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAEXAMPLE");
    assert_string_equal(c.secret_access_key, "se/cr+et&=");
    assert_string_equal(c.session_token, "to<ken>");
    assert_int_equal(c.expiration, 1767323045);
}

static void sts_error(void **state)
{
    (void)state;
    const char *xml = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                      "<Message>Token expired</Message></Error><RequestId>rid-1</RequestId>"
                      "</ErrorResponse>";
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_parse_sts_xml(xml, &c, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CREDENTIALS);
    assert_string_equal(err.code, "InvalidIdentityToken");
    assert_string_equal(err.request_id, "rid-1");
    assert_non_null(strstr(err.message, "Token expired"));
}

static void sts_incomplete(void **state)
{
    (void)state;
    const char *xml = "<R><Credentials><AccessKeyId>A</AccessKeyId><SessionToken>t</SessionToken>"
                      "<Expiration>2026-01-02T03:04:05Z</Expiration></Credentials></R>";
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_parse_sts_xml(xml, &c, &err), -1);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_string_equal(c.access_key_id, "");
    assert_int_equal(aws_cred_parse_sts_xml("<html>502</html>", &c, &err), -1);
    assert_int_equal(aws_cred_parse_sts_xml(NULL, &c, &err), -1);
}

static void json_container_and_imds(void **state)
{
    (void)state;
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    const char *container =
        "{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s1\",\"Token\":\"t1\","
        "\"Expiration\":\"2026-01-02T03:04:05Z\",\"RoleArn\":\"r\"}";
    assert_int_equal(aws_cred_parse_json(container, AWS_CRED_JSON_CONTAINER, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIA1");
    assert_string_equal(c.secret_access_key, "s1");
    assert_string_equal(c.session_token, "t1");
    assert_int_equal(c.expiration, 1767323045);

    const char *imds_fail = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"AccessKeyId\":\"A\","
                            "\"SecretAccessKey\":\"s\",\"Expiration\":\"2026-01-02T03:04:05Z\"}";
    assert_int_equal(aws_cred_parse_json(imds_fail, AWS_CRED_JSON_IMDS, &c, &err), -1);
    assert_non_null(strstr(err.message, "AssumeRoleUnauthorizedAccess"));
    assert_string_equal(c.secret_access_key, "");

    const char *no_expiry = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\"}";
    assert_int_equal(aws_cred_parse_json(no_expiry, AWS_CRED_JSON_IMDS, &c, &err), -1);
    assert_non_null(strstr(err.message, "Expiration"));
}

static void json_process(void **state)
{
    (void)state;
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    const char *long_term = "{\"Version\":1,\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\"}";
    assert_int_equal(aws_cred_parse_json(long_term, AWS_CRED_JSON_PROCESS, &c, &err), 0);
    assert_int_equal(c.expiration, 0);
    assert_string_equal(c.session_token, "");

    const char *temp = "{\"Version\":1,\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"s\","
                       "\"SessionToken\":\"tok\",\"Expiration\":\"2026-01-02T03:04:05+00:00\"}";
    assert_int_equal(aws_cred_parse_json(temp, AWS_CRED_JSON_PROCESS, &c, &err), 0);
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(c.expiration, 1767323045);

    const char *v2 = "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}";
    assert_int_equal(aws_cred_parse_json(v2, AWS_CRED_JSON_PROCESS, &c, &err), -1);
    assert_non_null(strstr(err.message, "Version"));

    const char *secret = "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"TOPSECRET\","
                         "\"Expiration\":\"soon\"}";
    assert_int_equal(aws_cred_parse_json(secret, AWS_CRED_JSON_PROCESS, &c, &err), -1);
    assert_null(strstr(err.message, "TOPSECRET"));
    assert_int_equal(aws_cred_parse_json("not json TOPSECRET", AWS_CRED_JSON_PROCESS, &c, &err),
                     -1);
    assert_null(strstr(err.message, "TOPSECRET"));
    assert_int_equal(aws_cred_parse_json("[1]", AWS_CRED_JSON_CONTAINER, &c, &err), -1);
}

static void form_encoding(void **state)
{
    (void)state;
    char *encoded = aws_cred_form_encode("arn:aws:iam::1:role/a b+c=d&e~f_g.h-");
    assert_string_equal(encoded, "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2Bc%3Dd%26e~f_g.h-");
    free(encoded);
}

static void freshness(void **state)
{
    (void)state;
    assert_int_equal(aws_cred_freshness_at(0, 1000), AWS_CRED_FRESH);
    assert_int_equal(aws_cred_freshness_at(1000 + 301, 1000), AWS_CRED_FRESH);
    assert_int_equal(aws_cred_freshness_at(1000 + 300, 1000), AWS_CRED_STALE);
    assert_int_equal(aws_cred_freshness_at(1001, 1000), AWS_CRED_STALE);
    assert_int_equal(aws_cred_freshness_at(1000, 1000), AWS_CRED_EXPIRED);
    assert_int_equal(aws_cred_freshness_at(900, 1000), AWS_CRED_EXPIRED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso8601_forms),
        cmocka_unit_test(iso8601_rejects),
        cmocka_unit_test(iso8601_round_trip),
        cmocka_unit_test(sts_credentials),
        cmocka_unit_test(sts_error),
        cmocka_unit_test(sts_incomplete),
        cmocka_unit_test(json_container_and_imds),
        cmocka_unit_test(json_process),
        cmocka_unit_test(form_encoding),
        cmocka_unit_test(freshness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
