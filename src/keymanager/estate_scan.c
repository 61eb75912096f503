/* Reading the account's keys and aliases for the estate: every ListKeys page
 * (1000 keys), every ListAliases page (100 aliases), and one DescribeKey for
 * each key no alias targets (its description tells whether it is SPIRE's).
 * Keys that have an alias are judged by their aliases alone, so an account
 * with K keys and A aliases costs ceil(K/1000) + ceil(A/100) pages plus one
 * DescribeKey per unaliased key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymanager/estate.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/listing.h"
#include "keymanager/naming.h"

#define ALIAS_PAGE_LIMIT 100  /* ListAliases maximum */
#define KEY_PAGE_LIMIT   1000 /* ListKeys maximum */

typedef struct {
    const estate_scan_options *options;
    estate_progress progress;
    estate_calls calls;
    kms_key_entry *keys;
    size_t key_count;
    estate_alias *aliases;
    size_t alias_count;
    size_t alias_capacity;
} scan_state;

static void report(scan_state *scan)
{
    if (scan->options->progress != NULL)
        scan->options->progress(scan->options->progress_ctx, &scan->progress);
}

static void scan_free(scan_state *scan)
{
    free(scan->keys);
    for (size_t i = 0; i < scan->alias_count; i++) {
        free(scan->aliases[i].name);
        free(scan->aliases[i].target);
    }
    free(scan->aliases);
}

static void out_of_memory(aws_error *err) { aws_error_set(err, AWS_ERR_INTERNAL, "out of memory"); }

static int add_key_page(scan_state *scan, const kms_key_page *page, aws_error *err)
{
    if (page->count == 0)
        return 0;
    kms_key_entry *keys = realloc(scan->keys, (scan->key_count + page->count) * sizeof *keys);
    if (keys == NULL) {
        out_of_memory(err);
        return -1;
    }
    memcpy(keys + scan->key_count, page->keys, page->count * sizeof *keys);
    scan->keys = keys;
    scan->key_count += page->count;
    return 0;
}

static int list_keys(scan_state *scan, aws_error *err)
{
    listing_cursor cursor;
    listing_start(&cursor, "ListKeys");
    listing_step step = LISTING_MORE;
    int rc = 0;
    while (rc == 0 && step == LISTING_MORE) {
        kms_key_page page = {0};
        scan->calls.list_keys++;
        rc = kms_list_keys(scan->options->kms, scan->options->call, listing_marker(&cursor),
                           KEY_PAGE_LIMIT, &page, err);
        if (rc == 0)
            rc = add_key_page(scan, &page, err);
        if (rc == 0)
            step = listing_advance(&cursor, page.truncated, page.next_marker, err);
        kms_key_page_clear(&page);
        scan->progress.keys_listed = scan->key_count;
        report(scan);
    }
    listing_end(&cursor);
    return rc == 0 && step == LISTING_DONE ? 0 : -1;
}

static int add_alias(scan_state *scan, const kms_alias *alias)
{
    if (scan->alias_count == scan->alias_capacity) {
        size_t capacity = scan->alias_capacity ? scan->alias_capacity * 2 : 256;
        estate_alias *items = realloc(scan->aliases, capacity * sizeof *items);
        if (items == NULL)
            return -1;
        scan->aliases = items;
        scan->alias_capacity = capacity;
    }
    estate_alias entry = {strdup(alias->alias_name), strdup(alias->target_key_id),
                          alias->last_updated_date};
    if (entry.name == NULL || entry.target == NULL) {
        free(entry.name);
        free(entry.target);
        return -1;
    }
    scan->aliases[scan->alias_count++] = entry;
    return 0;
}

static int add_alias_page(scan_state *scan, const kms_alias_page *page, aws_error *err)
{
    for (size_t i = 0; i < page->count; i++) {
        if (add_alias(scan, &page->aliases[i]) != 0) {
            out_of_memory(err);
            return -1;
        }
    }
    return 0;
}

static int list_aliases(scan_state *scan, aws_error *err)
{
    listing_cursor cursor;
    listing_start(&cursor, "ListAliases");
    listing_step step = LISTING_MORE;
    int rc = 0;
    while (rc == 0 && step == LISTING_MORE) {
        kms_alias_page page = {0};
        scan->calls.list_aliases++;
        rc = kms_list_aliases(scan->options->kms, scan->options->call, NULL,
                              listing_marker(&cursor), ALIAS_PAGE_LIMIT, &page, err);
        if (rc == 0)
            rc = add_alias_page(scan, &page, err);
        if (rc == 0)
            step = listing_advance(&cursor, page.truncated, page.next_marker, err);
        kms_alias_page_clear(&page);
        scan->progress.aliases_listed = scan->alias_count;
        report(scan);
    }
    listing_end(&cursor);
    return rc == 0 && step == LISTING_DONE ? 0 : -1;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A SPIRE alias (of the trust domain asked for, if any). */
static bool is_spire_alias(const scan_state *scan, const char *name)
{
    char *td = NULL, *server = NULL, *key = NULL;
    const char *trust_domain = scan->options->trust_domain;
    bool spire = trust_domain != NULL ? naming_parse_alias(name, trust_domain, &server, &key)
                                      : naming_split_alias(name, &td, &server, &key);
    free(td);
    free(server);
    free(key);
    return spire;
}

/* Sorted alias targets (pointers into scan->aliases): of every alias, or of
 * SPIRE aliases only. */
static const char **alias_targets(const scan_state *scan, bool spire_only, size_t *count)
{
    const char **targets = calloc(scan->alias_count + 1, sizeof *targets);
    if (targets == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < scan->alias_count; i++) {
        if (scan->aliases[i].target[0] != '\0' &&
            (!spire_only || is_spire_alias(scan, scan->aliases[i].name)))
            targets[n++] = scan->aliases[i].target;
    }
    qsort(targets, n, sizeof *targets, compare_strings);
    *count = n;
    return targets;
}

/* DescribeKey for one key; NULL when it failed (counted for an unaliased
 * key: it cannot be judged; an aliased key is judged by its aliases). */
static kms_key_metadata *describe(scan_state *scan, const kms_key_entry *key, bool aliased,
                                  estate *out)
{
    kms_key_metadata *metadata = calloc(1, sizeof *metadata);
    if (metadata == NULL)
        return NULL;
    aws_error err = {0};
    scan->calls.describe_key++;
    if (kms_describe_key(scan->options->kms, scan->options->call, key->key_id, metadata, &err) == 0)
        return metadata;
    free(metadata);
    if (!aliased && err.status != AWS_ERR_NOT_FOUND) { /* NotFound: deleted since the listing */
        if (out->undescribed++ == 0)
            snprintf(out->undescribed_why, sizeof out->undescribed_why,
                     "DescribeKey %s: %s: %.150s", key->key_id,
                     err.code[0] ? err.code : aws_status_name(err.status), err.message);
    }
    return NULL;
}

static bool listed_in(const char **targets, size_t count, const char *key_id)
{
    return bsearch(&key_id, targets, count, sizeof *targets, compare_strings) != NULL;
}

/* Which keys to describe: every unaliased key, and with describe_aliased
 * the keys a SPIRE alias targets. */
static int choose_keys(scan_state *scan, bool *aliased, bool *wanted)
{
    size_t all_count = 0, spire_count = 0;
    const char **all = alias_targets(scan, false, &all_count);
    const char **spire =
        scan->options->describe_aliased ? alias_targets(scan, true, &spire_count) : NULL;
    if (all == NULL || (scan->options->describe_aliased && spire == NULL)) {
        free(all);
        free(spire);
        return -1;
    }
    for (size_t i = 0; i < scan->key_count; i++) {
        const char *id = scan->keys[i].key_id;
        aliased[i] = listed_in(all, all_count, id);
        wanted[i] = !aliased[i] || (spire != NULL && listed_in(spire, spire_count, id));
        scan->progress.to_describe += wanted[i] ? 1 : 0;
    }
    free(all);
    free(spire);
    return 0;
}

static int describe_keys(scan_state *scan, kms_key_metadata **metadata, estate *out, aws_error *err)
{
    bool *aliased = calloc(scan->key_count + 1, sizeof *aliased);
    bool *wanted = calloc(scan->key_count + 1, sizeof *wanted);
    if (aliased == NULL || wanted == NULL || choose_keys(scan, aliased, wanted) != 0) {
        free(aliased);
        free(wanted);
        out_of_memory(err);
        return -1;
    }
    report(scan);
    for (size_t i = 0; i < scan->key_count; i++) {
        if (!wanted[i])
            continue;
        metadata[i] = describe(scan, &scan->keys[i], aliased[i], out);
        scan->progress.described++;
        report(scan);
    }
    free(aliased);
    free(wanted);
    return 0;
}

static int build(scan_state *scan, kms_key_metadata **metadata, estate *out)
{
    estate_listed_key *listed = calloc(scan->key_count + 1, sizeof *listed);
    if (listed == NULL)
        return -1;
    for (size_t i = 0; i < scan->key_count; i++)
        listed[i] = (estate_listed_key){scan->keys[i].key_id, scan->keys[i].arn, metadata[i]};
    size_t undescribed = out->undescribed;
    char why[sizeof out->undescribed_why];
    snprintf(why, sizeof why, "%s", out->undescribed_why);
    const estate_scan_options *o = scan->options;
    /* After the listings: their answers taught the corrected clock KMS's time. */
    double now_s = o->now_s > 0 ? o->now_s : fleet_kms_now_s();
    int rc = estate_build(listed, scan->key_count, scan->aliases, scan->alias_count,
                          o->trust_domain, now_s, o->ages, out);
    out->undescribed = undescribed;
    snprintf(out->undescribed_why, sizeof out->undescribed_why, "%s", why);
    free(listed);
    return rc;
}

int estate_scan(const estate_scan_options *options, estate *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    aws_error_clear(err);
    scan_state scan = {.options = options};
    kms_key_metadata **metadata = NULL;
    int rc = list_keys(&scan, err);
    if (rc == 0)
        rc = list_aliases(&scan, err);
    if (rc == 0 && (metadata = calloc(scan.key_count + 1, sizeof *metadata)) == NULL) {
        out_of_memory(err);
        rc = -1;
    }
    if (rc == 0)
        rc = describe_keys(&scan, metadata, out, err);
    if (rc == 0 && build(&scan, metadata, out) != 0) {
        out_of_memory(err);
        rc = -1;
    }
    out->calls = scan.calls;
    scan.progress.done = true;
    report(&scan);
    for (size_t i = 0; metadata != NULL && i < scan.key_count; i++)
        free(metadata[i]);
    free(metadata);
    scan_free(&scan);
    if (rc != 0) {
        estate_calls calls = out->calls;
        estate_clear(out);
        out->calls = calls;
    }
    return rc;
}
