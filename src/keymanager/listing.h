/* Bounded KMS listings (ListAliases, ListKeys, ListResourceTags, and the
 * tagging API's GetResources, whose PaginationToken is the marker): one walk,
 * listing_walk, asks a listing's page function for page after page and ends
 * when KMS says the listing is complete (its cursor, listing_advance, is the
 * rule). A listing that KMS
 * never completes is cut and reported as an error, never taken for complete:
 * a marker KMS already gave (a loop), "more pages" without a marker, or more
 * than LISTING_MAX_PAGES pages. A partial listing must not be judged as whole
 * (an alias missing from it would make its key look unaliased). */
#ifndef KM_LISTING_H
#define KM_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"

/* 10 million keys or 1 million aliases at KMS's largest pages: far above
 * KMS's default quotas (100,000 keys per account and region). */
#define LISTING_MAX_PAGES 10000

typedef struct {
    const char *operation; /* "ListAliases", for errors */
    char marker[2049];     /* marker for the next page; "" before the first (GetResources
                              tokens reach 2048 characters) */
    int pages;             /* pages received so far */
    uint64_t *seen;        /* hashes of the markers KMS gave, for loop detection */
    size_t seen_count;
    size_t seen_capacity;
} listing_cursor;

typedef enum {
    LISTING_MORE,
    LISTING_DONE,
    LISTING_BROKEN,      /* KMS's pages cannot complete the listing (err says why) */
    LISTING_PAGE_FAILED, /* listing_walk: the page function failed (its err) */
} listing_step;

void listing_start(listing_cursor *cursor, const char *operation);
void listing_end(listing_cursor *cursor);
/* The marker to send with the next request: NULL for the first page. */
const char *listing_marker(const listing_cursor *cursor);
/* Takes one page's Truncated and NextMarker: LISTING_DONE after the last
 * page, LISTING_MORE with the next marker stored, or LISTING_BROKEN with err
 * naming the operation and why the listing cannot be completed. */
listing_step listing_advance(listing_cursor *cursor, bool truncated, const char *next_marker,
                             aws_error *err);

/* How one page ended: more pages follow (KMS's Truncated, or a non-empty
 * GetResources token), and the marker for the next one. */
typedef struct {
    bool more;
    char next_marker[sizeof(((listing_cursor *)0)->marker) + 1]; /* one more: a marker too long
                                                                      for the cursor is seen */
} listing_page_end;

void listing_page_end_set(listing_page_end *end, bool more, const char *next_marker);

/* Fetches the page after marker (NULL: the first), takes what it needs from
 * it and fills end (listing_page_end_set). Returns 0, or -1 with err. */
typedef int (*listing_page_fn)(void *user, const char *marker, listing_page_end *end,
                               aws_error *err);

/* The one way to walk a listing: page after page until KMS completes it
 * (LISTING_DONE), the page function fails (LISTING_PAGE_FAILED), or the
 * cursor's rule cuts it (LISTING_BROKEN, err naming operation and why). err
 * is cleared before each page. */
listing_step listing_walk(const char *operation, listing_page_fn page, void *user, aws_error *err);

#endif
