/* Unit tests for json_scan (the Sign answer's reader): every input below is
 * also given to jansson, and the two must agree on whether it is one valid
 * JSON object and on the member's value; then the cases jansson has no say
 * in (too long for the caller's buffer) and the UTF-8 check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/json_scan.h"

/* json_scan's verdict on text, checked against jansson's. */
static json_scan_result scan_like_jansson(const char *text, size_t len, char *out, size_t size)
{
    size_t out_len = 0;
    json_scan_result result = json_scan_string_member(text, len, "Signature", out, size, &out_len);
    json_t *tree = json_loadb(text, len, 0, NULL);
    if (!json_is_object(tree)) {
        if (result != JSON_SCAN_MALFORMED)
            fail_msg("jansson refuses %.*s; json_scan says %d", (int)len, text, (int)result);
    } else {
        const json_t *member = json_object_get(tree, "Signature");
        if (!json_is_string(member)) {
            if (result != JSON_SCAN_ABSENT)
                fail_msg("no string member in %.*s; json_scan says %d", (int)len, text,
                         (int)result);
        } else if (result != JSON_SCAN_FOUND || out_len != json_string_length(member) ||
                   memcmp(out, json_string_value(member), out_len) != 0) {
            fail_msg("%.*s: json_scan says %d", (int)len, text, (int)result);
        }
    }
    json_decref(tree);
    return result;
}

static json_scan_result scan(const char *text, char *out, size_t size)
{
    return scan_like_jansson(text, strlen(text), out, size);
}

static void test_finds_the_member(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(scan("{\"KeyId\":\"arn:aws:kms:k\",\"Signature\":\"MEUCIQ==\","
                          "\"SigningAlgorithm\":\"ECDSA_SHA_256\"}",
                          out, sizeof out),
                     JSON_SCAN_FOUND);
    assert_string_equal(out, "MEUCIQ==");
    assert_int_equal(scan(" \r\n\t{ \"Signature\" : \"a\" } \n", out, sizeof out), JSON_SCAN_FOUND);
    assert_string_equal(out, "a");
    assert_int_equal(scan("{\"Signature\":\"\"}", out, sizeof out), JSON_SCAN_FOUND);
    assert_string_equal(out, "");
}

static void test_skips_every_other_value(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(scan("{\"a\":{\"Signature\":\"nested\",\"b\":[1,2.5,-0.1e-3,true,false,null,"
                          "[],{},[{\"c\":\"\\\"\"}]]},\"n\":-12,\"e\":1E+2,\"Signature\":\"top\"}",
                          out, sizeof out),
                     JSON_SCAN_FOUND);
    assert_string_equal(out, "top");
    assert_int_equal(scan("{\"a\":{\"Signature\":\"nested only\"}}", out, sizeof out),
                     JSON_SCAN_ABSENT);
    assert_int_equal(scan("{}", out, sizeof out), JSON_SCAN_ABSENT);
    assert_int_equal(scan("{\"Signature\":17}", out, sizeof out), JSON_SCAN_ABSENT);
    assert_int_equal(scan("{\"Signature\":null}", out, sizeof out), JSON_SCAN_ABSENT);
}

static void test_repeated_member_last_one_counts(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(scan("{\"Signature\":\"first\",\"Signature\":\"last\"}", out, sizeof out),
                     JSON_SCAN_FOUND);
    assert_string_equal(out, "last");
    assert_int_equal(scan("{\"Signature\":\"first\",\"Signature\":[1]}", out, sizeof out),
                     JSON_SCAN_ABSENT);
    assert_int_equal(scan("{\"Signature\":1,\"Signature\":\"last\"}", out, sizeof out),
                     JSON_SCAN_FOUND);
}

static void test_escapes_are_decoded(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(scan("{\"Signature\":\"a\\/b\\\\c\\\"d\\b\\f\\n\\r\\t\"}", out, sizeof out),
                     JSON_SCAN_FOUND);
    assert_string_equal(out, "a/b\\c\"d\b\f\n\r\t");
    assert_int_equal(
        scan("{\"Sig\\u006eature\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", out, sizeof out),
        JSON_SCAN_FOUND);
    assert_string_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(scan("{\"Signature\":\"\xc3\xa9 raw UTF-8\"}", out, sizeof out),
                     JSON_SCAN_FOUND);
}

static void test_malformed_inputs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "[\"Signature\"]",
        "\"Signature\"",
        "{\"Signature\":\"a\"",
        "{\"Signature\":\"a\",}",
        "{\"Signature\" \"a\"}",
        "{Signature:\"a\"}",
        "{\"Signature\":\"a\"} x",
        "{\"Signature\":\"a\"}{}",
        "{\"Signature\":'a'}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":1e}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":[1,]}",
        "{\"a\":[1 2]}",
        "{\"a\":123456789012345678901234567890}",
        "{\"a\":1e999}",
        "{\"Signature\":\"bad \\x escape\"}",
        "{\"Signature\":\"\\u12\"}",
        "{\"Signature\":\"\\ud800\"}",
        "{\"Signature\":\"\\udc00\"}",
        "{\"Signature\":\"\\ud800\\u0041\"}",
        "{\"Signature\":\"\\u0000\"}",
        "{\"Signature\":\"tab\there\"}",
        "{\"Signature\":\"\xc3\"}",
        "{\"Signature\":\"\xc0\xaf\"}",
        "{\"Signature\":\"\xed\xa0\x80\"}",
        "{\"Signature\":\"\xf4\x90\x80\x80\"}",
        "{\"Signature\":\"\xff\"}",
    };
    char out[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (scan(bad[i], out, sizeof out) != JSON_SCAN_MALFORMED)
            fail_msg("accepted: %s", bad[i]);
    }
    static const char nul_inside[] = "{\"Signature\":\"a\0b\"}";
    assert_int_equal(scan_like_jansson(nul_inside, sizeof nul_inside - 1, out, sizeof out),
                     JSON_SCAN_MALFORMED);
}

static void test_numbers_jansson_takes(void **state)
{
    (void)state;
    char out[16];
    static const char *const good[] = {
        "{\"a\":0,\"Signature\":\"x\"}",
        "{\"a\":-0.0e+0,\"Signature\":\"x\"}",
        "{\"a\":9223372036854775807,\"Signature\":\"x\"}",
        "{\"a\":-9223372036854775808,\"Signature\":\"x\"}",
        "{\"a\":1e-999,\"Signature\":\"x\"}",
        "{\"a\":0.000000000000000000000000000000000000000000000000000000000000000000001}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_not_equal(scan(good[i], out, sizeof out), JSON_SCAN_MALFORMED);
    assert_int_equal(scan("{\"a\":9223372036854775808}", out, sizeof out), JSON_SCAN_MALFORMED);
}

static void test_nesting_depth_as_jansson(void **state)
{
    (void)state;
    char out[16];
    for (int depth = 2047; depth <= 2049; depth++) {
        size_t len = 2 * (size_t)depth + 16;
        char *text = malloc(len);
        size_t n = 0;
        n += (size_t)sprintf(text, "{\"a\":");
        for (int i = 1; i < depth; i++)
            text[n++] = '[';
        for (int i = 1; i < depth; i++)
            text[n++] = ']';
        text[n++] = '}';
        json_scan_result result = scan_like_jansson(text, n, out, sizeof out);
        assert_int_equal(result, depth <= 2048 ? JSON_SCAN_ABSENT : JSON_SCAN_MALFORMED);
        free(text);
    }
}

static void test_value_longer_than_the_buffer(void **state)
{
    (void)state;
    char out[8];
    size_t len;
    const char *text = "{\"Signature\":\"12345678\"}";
    assert_int_equal(
        json_scan_string_member(text, strlen(text), "Signature", out, sizeof out, &len),
        JSON_SCAN_TOO_LONG);
    text = "{\"Signature\":\"1234567\"}";
    assert_int_equal(
        json_scan_string_member(text, strlen(text), "Signature", out, sizeof out, &len),
        JSON_SCAN_FOUND);
    assert_int_equal(len, 7);
    /* a later, shorter value replaces the long one */
    text = "{\"Signature\":\"123456789\",\"Signature\":\"ok\"}";
    assert_int_equal(
        json_scan_string_member(text, strlen(text), "Signature", out, sizeof out, &len),
        JSON_SCAN_FOUND);
    assert_string_equal(out, "ok");
}

static void test_utf8_check(void **state)
{
    (void)state;
    assert_true(json_scan_utf8_valid("arn:aws:kms:us-east-2:1:key/k", 29));
    assert_true(json_scan_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_true(json_scan_utf8_valid("", 0));
    assert_false(json_scan_utf8_valid("\xc3", 1));
    assert_false(json_scan_utf8_valid("\xc0\x80", 2));
    assert_false(json_scan_utf8_valid("\xed\xa0\x80", 3));
    assert_false(json_scan_utf8_valid("a\xff", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_the_member),
        cmocka_unit_test(test_skips_every_other_value),
        cmocka_unit_test(test_repeated_member_last_one_counts),
        cmocka_unit_test(test_escapes_are_decoded),
        cmocka_unit_test(test_malformed_inputs),
        cmocka_unit_test(test_numbers_jansson_takes),
        cmocka_unit_test(test_nesting_depth_as_jansson),
        cmocka_unit_test(test_value_longer_than_the_buffer),
        cmocka_unit_test(test_utf8_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
