/* Bounded paged listings (see listing.h). */
#include "keymanager/listing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: markers are opaque text; a 64-bit hash tells them apart. */
static uint64_t marker_hash(const char *marker)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *c = (const unsigned char *)marker; *c != '\0'; c++) {
        hash ^= *c;
        hash *= 1099511628211ULL;
    }
    return hash;
}

void listing_start(listing_cursor *cursor, const char *operation)
{
    memset(cursor, 0, sizeof *cursor);
    cursor->operation = operation;
}

void listing_end(listing_cursor *cursor)
{
    free(cursor->seen);
    cursor->seen = NULL;
    cursor->seen_count = cursor->seen_capacity = 0;
}

const char *listing_marker(const listing_cursor *cursor)
{
    return cursor->marker[0] != '\0' ? cursor->marker : NULL;
}

static bool seen_before(const listing_cursor *cursor, uint64_t hash)
{
    for (size_t i = 0; i < cursor->seen_count; i++) {
        if (cursor->seen[i] == hash)
            return true;
    }
    return false;
}

static bool remember(listing_cursor *cursor, uint64_t hash)
{
    if (cursor->seen_count == cursor->seen_capacity) {
        size_t capacity = cursor->seen_capacity > 0 ? cursor->seen_capacity * 2 : 16;
        uint64_t *grown = realloc(cursor->seen, capacity * sizeof *grown);
        if (grown == NULL)
            return false;
        cursor->seen = grown;
        cursor->seen_capacity = capacity;
    }
    cursor->seen[cursor->seen_count++] = hash;
    return true;
}

listing_step listing_advance(listing_cursor *cursor, bool truncated, const char *next_marker,
                             aws_error *err)
{
    cursor->pages++;
    if (!truncated)
        return LISTING_DONE;
    if (next_marker == NULL || next_marker[0] == '\0') {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "%s answered Truncated without a NextMarker (page %d): the listing cannot "
                      "be completed",
                      cursor->operation, cursor->pages);
        return LISTING_BROKEN;
    }
    if (strlen(next_marker) >= sizeof cursor->marker) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "%s answered a NextMarker of %zu bytes (page %d): the listing cannot be "
                      "completed",
                      cursor->operation, strlen(next_marker), cursor->pages);
        return LISTING_BROKEN;
    }
    uint64_t hash = marker_hash(next_marker);
    if (seen_before(cursor, hash)) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "%s answered a NextMarker it had given before (page %d): the listing would "
                      "never end",
                      cursor->operation, cursor->pages);
        return LISTING_BROKEN;
    }
    if (cursor->pages >= LISTING_MAX_PAGES) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "%s has more than %d pages: the listing was cut there", cursor->operation,
                      LISTING_MAX_PAGES);
        return LISTING_BROKEN;
    }
    if (!remember(cursor, hash)) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory listing %s", cursor->operation);
        return LISTING_BROKEN;
    }
    snprintf(cursor->marker, sizeof cursor->marker, "%s", next_marker);
    return LISTING_MORE;
}

void listing_page_end_set(listing_page_end *end, bool more, const char *next_marker)
{
    end->more = more;
    snprintf(end->next_marker, sizeof end->next_marker, "%s",
             next_marker != NULL ? next_marker : "");
}

listing_step listing_walk(const char *operation, listing_page_fn page, void *user, aws_error *err)
{
    listing_cursor cursor;
    listing_start(&cursor, operation);
    listing_step step = LISTING_MORE;
    while (step == LISTING_MORE) {
        listing_page_end end = {0};
        aws_error_clear(err);
        if (page(user, listing_marker(&cursor), &end, err) != 0)
            step = LISTING_PAGE_FAILED;
        else
            step = listing_advance(&cursor, end.more, end.next_marker, err);
    }
    listing_end(&cursor);
    return step;
}
