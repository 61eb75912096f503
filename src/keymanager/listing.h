/* Bounded KMS listings (ListAliases, ListKeys, ListResourceTags, and the
 * tagging API's GetResources, whose PaginationToken is the marker): a cursor walks the pages and
 * ends the walk when KMS says the listing is complete. A listing that KMS
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

typedef enum { LISTING_MORE, LISTING_DONE, LISTING_BROKEN } listing_step;

void listing_start(listing_cursor *cursor, const char *operation);
void listing_end(listing_cursor *cursor);
/* The marker to send with the next request: NULL for the first page. */
const char *listing_marker(const listing_cursor *cursor);
/* Takes one page's Truncated and NextMarker: LISTING_DONE after the last
 * page, LISTING_MORE with the next marker stored, or LISTING_BROKEN with err
 * naming the operation and why the listing cannot be completed. */
listing_step listing_advance(listing_cursor *cursor, bool truncated, const char *next_marker,
                             aws_error *err);

#endif
