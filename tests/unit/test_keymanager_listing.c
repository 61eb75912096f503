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

/* A scripted listing for listing_walk: page i answers markers[i] ("" ends
 * the listing, NULL is "more" without a marker), or fails at fail_at. */
typedef struct {
    const char *const *markers;
    int fail_at; /* -1: never */
    int pages;
    char asked[8][16]; /* the marker each page was asked with ("-": none) */
} scripted_listing;

static int scripted_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    scripted_listing *listing = user;
    int i = listing->pages++;
    if (i < 8)
        snprintf(listing->asked[i], sizeof listing->asked[i], "%s", marker ? marker : "-");
    if (i == listing->fail_at) {
        aws_error_set(err, AWS_ERR_THROTTLED, "slow down");
        return -1;
    }
    const char *next = listing->markers[i];
    listing_page_end_set(end, next == NULL || next[0] != '\0', next);
    return 0;
}

static void test_walk_asks_each_marker_once_until_complete(void **state)
{
    (void)state;
    const char *const markers[] = {"m1", "m2", ""};
    scripted_listing listing = {.markers = markers, .fail_at = -1};
    aws_error err;
    assert_int_equal(listing_walk("ListKeys", scripted_page, &listing, &err), LISTING_DONE);
    assert_int_equal(listing.pages, 3);
    assert_string_equal(listing.asked[0], "-");
    assert_string_equal(listing.asked[1], "m1");
    assert_string_equal(listing.asked[2], "m2");
}

static void test_walk_stops_on_a_broken_listing_or_a_failed_page(void **state)
{
    (void)state;
    const char *const loop[] = {"m1", "m2", "m1", ""};
    scripted_listing listing = {.markers = loop, .fail_at = -1};
    aws_error err;
    assert_int_equal(listing_walk("ListAliases", scripted_page, &listing, &err), LISTING_BROKEN);
    assert_int_equal(listing.pages, 3);
    assert_non_null(strstr(err.message, "ListAliases answered a NextMarker it had given before"));

    const char *const no_marker[] = {"m1", NULL, ""};
    listing = (scripted_listing){.markers = no_marker, .fail_at = -1};
    assert_int_equal(listing_walk("ListAliases", scripted_page, &listing, &err), LISTING_BROKEN);
    assert_int_equal(listing.pages, 2);
    assert_non_null(strstr(err.message, "without a NextMarker"));

    const char *const fine[] = {"m1", "m2", ""};
    listing = (scripted_listing){.markers = fine, .fail_at = 1};
    assert_int_equal(listing_walk("ListAliases", scripted_page, &listing, &err),
                     LISTING_PAGE_FAILED);
    assert_int_equal(listing.pages, 2);
    assert_int_equal(err.status, AWS_ERR_THROTTLED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walks_pages_until_complete),
        cmocka_unit_test(test_repeated_marker_is_an_error),
        cmocka_unit_test(test_truncated_without_marker_is_an_error),
        cmocka_unit_test(test_page_cap),
        cmocka_unit_test(test_oversized_marker_is_an_error),
        cmocka_unit_test(test_walk_asks_each_marker_once_until_complete),
        cmocka_unit_test(test_walk_stops_on_a_broken_listing_or_a_failed_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
