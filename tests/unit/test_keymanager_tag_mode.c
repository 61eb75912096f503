/* Unit tests of tag-based key discovery's pure decisions (tag_mode.h): the
 * spire-last-update format and parse (Go's ParseInt), the tags of a new key
 * in upstream's order, and what a key's tags say at the stale boundary, for
 * ours, undated, malformed, inactive and other trust domains' keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/tag_mode.h"

#define NOW_S    1800000000.0
#define STALE_MS (336LL * 3600 * 1000)
#define TD       "example.org"
#define ME       "server-me"

/* aws_tag_set_get and aws_tag_set_clear come from kms.c; a set built here. */
typedef struct {
    aws_tag items[8];
    aws_tag_set set;
} tag_list;

static void tags_of(tag_list *list, const char *const pairs[][2], size_t count)
{
    for (size_t i = 0; i < count; i++)
        list->items[i] = (aws_tag){(char *)pairs[i][0], (char *)pairs[i][1]};
    list->set = (aws_tag_set){list->items, count};
}

static tags_verdict judge(const char *td, const char *id, const char *active, const char *stamp)
{
    const char *pairs[4][2];
    size_t n = 0;
    if (td)
        pairs[n][0] = TAG_SERVER_TD, pairs[n++][1] = td;
    if (id)
        pairs[n][0] = TAG_SERVER_ID, pairs[n++][1] = id;
    if (active)
        pairs[n][0] = TAG_ACTIVE, pairs[n++][1] = active;
    if (stamp)
        pairs[n][0] = TAG_LAST_UPDATE, pairs[n++][1] = stamp;
    tag_list list;
    tags_of(&list, pairs, n);
    return tag_mode_judge(&list.set, TD, ME, NOW_S, STALE_MS);
}

static void test_time_format_and_parse(void **state)
{
    (void)state;
    char text[TAG_MODE_TIME_SIZE];
    tag_mode_format_time(1800000000.9, text);
    assert_string_equal(text, "1800000000");
    int64_t value = 0;
    assert_true(tag_mode_parse_time("1800000000", &value));
    assert_int_equal(value, 1800000000);
    assert_true(tag_mode_parse_time("+5", &value));
    assert_int_equal(value, 5);
    assert_true(tag_mode_parse_time("-5", &value));
    assert_int_equal(value, -5);
    assert_true(tag_mode_parse_time("0", &value));
    assert_true(tag_mode_parse_time("9223372036854775807", &value));
    const char *bad[] = {"",           "+",        "-",    " 1",    "1 ",
                         "1.5",        "1e9",      "0x10", "1_000", "9223372036854775808",
                         "2026-01-01", "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(tag_mode_parse_time(bad[i], &value));
    assert_false(tag_mode_parse_time(NULL, &value));
}

static void test_new_key_tags_in_upstream_order(void **state)
{
    (void)state;
    kms_tag operator_tags[] = {{"team", "pki"}, {"env", "prod"}};
    kms_tag out[TAG_MODE_SPIRE_TAGS + 2];
    size_t n = tag_mode_key_tags(TD, ME, "x509-CA-A", "false", "1800000000", operator_tags, 2, out);
    assert_int_equal(n, 7);
    const char *expected[][2] = {{TAG_SERVER_TD, TD},
                                 {TAG_SERVER_ID, ME},
                                 {TAG_ACTIVE, "false"},
                                 {"team", "pki"},
                                 {"env", "prod"},
                                 {TAG_KEY_ID, "x509-CA-A"},
                                 {TAG_LAST_UPDATE, "1800000000"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i].key, expected[i][0]);
        assert_string_equal(out[i].value, expected[i][1]);
    }
}

static void test_judge_at_the_stale_boundary(void **state)
{
    (void)state;
    /* 14 days = 1209600 s before NOW_S is stale; one second later is not */
    assert_int_equal(judge(TD, "peer", "true", "1798790400"), TAGS_SAY_STALE);
    assert_int_equal(judge(TD, "peer", "true", "1798790401"), TAGS_SAY_LIVE);
    assert_int_equal(judge(TD, "peer", "true", "0"), TAGS_SAY_STALE);
    assert_int_equal(judge(TD, "peer", "true", "-1"), TAGS_SAY_STALE);
    assert_int_equal(judge(TD, "peer", "true", "1900000000"), TAGS_SAY_LIVE); /* future */
}

static void test_judge_whose_key_and_what_state(void **state)
{
    (void)state;
    assert_int_equal(judge(TD, ME, "true", "0"), TAGS_SAY_OURS);
    assert_int_equal(judge("example.org2", ME, "true", "0"), TAGS_SAY_STALE);
    assert_int_equal(judge(TD, "peer", "true", NULL), TAGS_SAY_UNDATED);
    assert_int_equal(judge(TD, "peer", "true", "soon"), TAGS_SAY_MALFORMED);
    assert_int_equal(judge(TD, "peer", "false", "0"), TAGS_SAY_NOTHING);
    assert_int_equal(judge(TD, "peer", "TRUE", "0"), TAGS_SAY_NOTHING);
    assert_int_equal(judge(TD, "peer", NULL, "0"), TAGS_SAY_NOTHING);
    assert_int_equal(judge(NULL, NULL, NULL, NULL), TAGS_SAY_NOTHING);
    assert_true(tag_mode_undated_is_stale(NOW_S - 14 * 86400, NOW_S, STALE_MS));
    assert_false(tag_mode_undated_is_stale(NOW_S - 14 * 86400 + 1, NOW_S, STALE_MS));
    assert_false(tag_mode_undated_is_stale(0, NOW_S, STALE_MS));
}

static void test_carries_spire_tags(void **state)
{
    (void)state;
    tag_list list;
    const char *none[][2] = {{"team", "pki"}, {"spire-other", "x"}};
    tags_of(&list, none, 2);
    assert_false(tag_mode_carries_spire_tags(&list.set));
    const char *stamp[][2] = {{"team", "pki"}, {TAG_LAST_UPDATE, "1"}};
    tags_of(&list, stamp, 2);
    assert_true(tag_mode_carries_spire_tags(&list.set));
    const char *active[][2] = {{TAG_ACTIVE, "false"}};
    tags_of(&list, active, 1);
    assert_true(tag_mode_carries_spire_tags(&list.set));
    assert_false(tag_mode_is_active(&list.set));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format_and_parse),
        cmocka_unit_test(test_new_key_tags_in_upstream_order),
        cmocka_unit_test(test_judge_at_the_stale_boundary),
        cmocka_unit_test(test_judge_whose_key_and_what_state),
        cmocka_unit_test(test_carries_spire_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
