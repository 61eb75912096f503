/* Unit tests of the bounded listing cursor: a listing ends when KMS says it
 * is complete, and is cut as an error (never taken for complete) on a marker
 * KMS gave before, "more pages" without a marker, or past the page cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/listing.h"

static void test_walks_pages_until_complete(void **state)
{
    (void)state;
    listing_cursor cursor;
    aws_error err;
    aws_error_clear(&err);
    listing_start(&cursor, "ListAliases");
    assert_null(listing_marker(&cursor));
    assert_int_equal(listing_advance(&cursor, true, "m1", &err), LISTING_MORE);
    assert_string_equal(listing_marker(&cursor), "m1");
    assert_int_equal(listing_advance(&cursor, true, "m2", &err), LISTING_MORE);
    assert_string_equal(listing_marker(&cursor), "m2");
    /* KMS may send a NextMarker on the last page; Truncated decides */
    assert_int_equal(listing_advance(&cursor, false, "m3", &err), LISTING_DONE);
    assert_int_equal(cursor.pages, 3);
    assert_int_equal(err.status, AWS_OK);
    listing_end(&cursor);
}

static void test_repeated_marker_is_an_error(void **state)
{
    (void)state;
    listing_cursor cursor;
    aws_error err;
    aws_error_clear(&err);
    listing_start(&cursor, "ListKeys");
    assert_int_equal(listing_advance(&cursor, true, "same", &err), LISTING_MORE);
    assert_int_equal(listing_advance(&cursor, true, "same", &err), LISTING_BROKEN);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    assert_string_equal(err.message, "ListKeys answered a NextMarker it had given before (page 2): "
                                     "the listing would never end");
    listing_end(&cursor);

    /* a longer loop: a, b, c, a */
    aws_error_clear(&err);
    listing_start(&cursor, "ListAliases");
    assert_int_equal(listing_advance(&cursor, true, "a", &err), LISTING_MORE);
    assert_int_equal(listing_advance(&cursor, true, "b", &err), LISTING_MORE);
    assert_int_equal(listing_advance(&cursor, true, "c", &err), LISTING_MORE);
    assert_int_equal(listing_advance(&cursor, true, "a", &err), LISTING_BROKEN);
    listing_end(&cursor);
}

static void test_truncated_without_marker_is_an_error(void **state)
{
    (void)state;
    listing_cursor cursor;
    aws_error err;
    aws_error_clear(&err);
    listing_start(&cursor, "ListAliases");
    assert_int_equal(listing_advance(&cursor, true, "", &err), LISTING_BROKEN);
    assert_string_equal(err.message, "ListAliases answered Truncated without a NextMarker (page "
                                     "1): the listing cannot be completed");
    listing_end(&cursor);
    listing_start(&cursor, "ListAliases");
    assert_int_equal(listing_advance(&cursor, true, NULL, &err), LISTING_BROKEN);
    listing_end(&cursor);
}

static void test_page_cap(void **state)
{
    (void)state;
    listing_cursor cursor;
    aws_error err;
    aws_error_clear(&err);
    listing_start(&cursor, "ListKeys");
    char marker[32];
    listing_step step = LISTING_MORE;
    int pages = 0;
    while (step == LISTING_MORE) {
        snprintf(marker, sizeof marker, "page-%d", pages);
        step = listing_advance(&cursor, true, marker, &err);
        pages++;
    }
    assert_int_equal(step, LISTING_BROKEN);
    assert_int_equal(pages, LISTING_MAX_PAGES);
    assert_string_equal(err.message,
                        "ListKeys has more than 10000 pages: the listing was cut there");
    listing_end(&cursor);
}

static void test_oversized_marker_is_an_error(void **state)
{
    (void)state;
    listing_cursor cursor;
    aws_error err;
    aws_error_clear(&err);
    char marker[2050]; /* 2049 characters: one more than a GetResources token may have */
    memset(marker, 'm', sizeof marker - 1);
    marker[sizeof marker - 1] = '\0';
    listing_start(&cursor, "ListAliases");
    assert_int_equal(listing_advance(&cursor, true, marker + 1, &err), LISTING_MORE);
    assert_string_equal(listing_marker(&cursor), marker + 1); /* 2048: kept whole */
    assert_int_equal(listing_advance(&cursor, true, marker, &err), LISTING_BROKEN);
    assert_int_equal(err.status, AWS_ERR_BAD_RESPONSE);
    listing_end(&cursor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walks_pages_until_complete),
        cmocka_unit_test(test_repeated_marker_is_an_error),
        cmocka_unit_test(test_truncated_without_marker_is_an_error),
        cmocka_unit_test(test_page_cap),
        cmocka_unit_test(test_oversized_marker_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
