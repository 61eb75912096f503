/* `keys list` and `keys prune`: the estate (keymanager/estate.h) read from
 * KMS, judged by the fleet tasks' rules, shown as a table or JSON; the prune
 * plan printed, or carried out with --yes. A progress line goes to stderr
 * while listing, on a terminal only. Tags that could not be read
 * (tag:GetResources denied) are a warning on stderr and in the summary, not
 * an error: the keys are then judged by their aliases and descriptions. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "keymanager/estate.h"
#include "keymanager/tag_mode.h"

/* ---- progress on a terminal -------------------------------------------------- */

typedef struct {
    bool enabled;
    int64_t last_ms;
} progress_line;

static void progress_clear(progress_line *line)
{
    if (line->enabled) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

static bool progress_due(progress_line *line, bool force)
{
    int64_t now = clock_monotonic_ms();
    if (!line->enabled || (!force && now - line->last_ms < 200))
        return false;
    line->last_ms = now;
    return true;
}

static void on_scan_progress(void *ctx, const estate_progress *progress)
{
    progress_line *line = ctx;
    if (progress->done) {
        progress_clear(line);
        return;
    }
    if (!progress_due(line, false))
        return;
    if (progress->to_describe > 0 || progress->described > 0)
        fprintf(stderr,
                "\r\033[Klisting: %zu keys, %zu aliases, %zu tagged; describing keys %zu/%zu",
                progress->keys_listed, progress->aliases_listed, progress->tagged_listed,
                progress->described, progress->to_describe);
    else
        fprintf(stderr, "\r\033[Klisting: %zu keys, %zu aliases, %zu tagged", progress->keys_listed,
                progress->aliases_listed, progress->tagged_listed);
    fflush(stderr);
}

static void on_prune_progress(void *ctx, size_t done, size_t total)
{
    progress_line *line = ctx;
    if (!progress_due(line, done == total))
        return;
    fprintf(stderr, "\r\033[Kpruning: %zu/%zu actions", done, total);
    fflush(stderr);
}

/* ---- shared set-up ------------------------------------------------------------- */

typedef struct {
    cli_aws aws;
    estate_ages ages;
    estate account;
    progress_line progress;
} keys_run;

static void set_logging(const cli_options *options)
{
    log_set_level(options->debug ? LOG_DEBUG : LOG_ERROR);
}

/* Opens the client and scans; prints the reason and returns an exit code
 * (CLI_EXIT_OK when the scan worked). */
static int open_and_scan(const cli_options *options, keys_run *run)
{
    char why[1024];
    set_logging(options);
    run->ages = (estate_ages){options->stale_alias_age_ms, options->orphan_key_age_ms};
    run->progress.enabled = isatty(STDERR_FILENO) == 1;
    if (cli_aws_open(options, NULL, &run->aws, why, sizeof why) != 0) {
        fprintf(stderr, "spire-aws-kms %s: %s\n", cli_command_name(options->command), why);
        return CLI_EXIT_USAGE;
    }
    aws_call_ctx call = {0};
    estate_scan_options scan = {
        .kms = run->aws.kms,
        .call = &call,
        .trust_domain = options->trust_domain,
        .ages = &run->ages,
        .describe_aliased = options->describe_aliased,
        .progress = on_scan_progress,
        .progress_ctx = &run->progress,
    };
    aws_error err = {0};
    if (estate_scan(&scan, &run->account, &err) != 0) {
        progress_clear(&run->progress);
        cli_explain_error(&err, "listing the keys and aliases", why, sizeof why);
        fprintf(stderr, "spire-aws-kms %s: %s (region %s, endpoint %s)\n",
                cli_command_name(options->command), why, run->aws.region, run->aws.endpoint);
        cli_aws_close(&run->aws);
        return CLI_EXIT_USAGE;
    }
    if (run->account.undescribed > 0)
        fprintf(stderr,
                "note: %zu keys without an alias could not be described, so they were not "
                "judged (first: %s)\n",
                run->account.undescribed, run->account.undescribed_why);
    if (!run->account.tags_read)
        fprintf(stderr,
                "warning: the keys' spire-* tags were not read (%s%s): keys are judged by their "
                "aliases and descriptions alone, keys known only by their tags are not listed, "
                "and a key a tag-mode server keeps alive by its tags may be shown prunable "
                "(keys prune reads each key's tags again before changing anything)%s\n",
                run->account.tags_denied ? "tag:GetResources denied: " : "", run->account.tags_why,
                run->account.tags_denied
                    ? "; grant tag:GetResources in an identity-based IAM policy"
                    : "");
    return CLI_EXIT_OK;
}

static void close_run(keys_run *run)
{
    estate_clear(&run->account);
    cli_aws_close(&run->aws);
}

static json_t *string_or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? json_string(text) : json_null();
}

static json_t *time_or_null(double epoch_s)
{
    char text[32];
    cli_format_time(epoch_s, text, sizeof text);
    return string_or_null(text);
}

/* The key's spire-* tags as KMS holds them, or null. */
static json_t *tags_json(const estate_spire_tags *tags)
{
    const char *names[] = {TAG_SERVER_TD, TAG_SERVER_ID, TAG_ACTIVE, TAG_KEY_ID, TAG_LAST_UPDATE};
    const char *values[] = {tags->server_td, tags->server_id, tags->active, tags->key_id,
                            tags->last_update};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (values[i] != NULL)
            json_object_set_new(out, names[i], json_string(values[i]));
    }
    if (json_object_size(out) > 0)
        return out;
    json_decref(out);
    return json_null();
}

static void print_json(json_t *document)
{
    char *text = json_dumps(document, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(document);
}

/* ---- keys list ------------------------------------------------------------------ */

static json_t *key_json(const estate_key *key)
{
    json_t *item = json_object();
    json_object_set_new(item, "key_id", json_string(key->key_id));
    json_object_set_new(item, "arn", string_or_null(key->arn));
    json_object_set_new(item, "trust_domain", string_or_null(key->trust_domain));
    json_object_set_new(item, "server_id", string_or_null(key->server_id));
    json_object_set_new(item, "spire_key_id", string_or_null(key->spire_key_id));
    json_object_set_new(item, "alias", string_or_null(key->alias));
    json_object_set_new(item, "alias_last_updated",
                        key->alias ? time_or_null(key->alias_last_updated) : json_null());
    json_object_set_new(item, "key_spec",
                        key->described ? json_string(kms_key_spec_name(key->key_spec))
                                       : json_null());
    json_object_set_new(item, "state", key->described ? string_or_null(key->state) : json_null());
    json_object_set_new(item, "created", key->described ? time_or_null(key->created) : json_null());
    json_object_set_new(item, "tags", tags_json(&key->tags));
    json_object_set_new(item, "verdict", json_string(estate_verdict_name(key->verdict)));
    return item;
}

static json_t *summary_json(const keys_run *run, const cli_options *options,
                            const estate_summary *summary)
{
    char stale[32], orphan[32];
    cli_format_duration(run->ages.stale_alias_age_ms, stale, sizeof stale);
    cli_format_duration(run->ages.orphan_key_age_ms, orphan, sizeof orphan);
    json_t *by_verdict = json_object();
    for (int v = 0; v < ESTATE_VERDICT_COUNT; v++)
        json_object_set_new(by_verdict, estate_verdict_name((estate_verdict)v),
                            json_integer((json_int_t)summary->by_verdict[v]));
    const estate_calls *made = &run->account.calls;
    json_t *calls = json_pack("{s:i, s:i, s:i, s:i}", "ListKeys", made->list_keys, "ListAliases",
                              made->list_aliases, "GetResources", made->get_resources,
                              "DescribeKey", made->describe_key);
    char tags[1200];
    if (run->account.tags_read)
        snprintf(tags, sizeof tags, "read");
    else
        snprintf(tags, sizeof tags, "not read: %s%s",
                 run->account.tags_denied ? "tag:GetResources denied: " : "",
                 run->account.tags_why);
    json_t *out = json_object();
    json_object_set_new(out, "keys", json_integer((json_int_t)summary->keys));
    json_object_set_new(out, "prunable", json_integer((json_int_t)summary->prunable));
    json_object_set_new(out, "monthly_cost_usd", json_real(summary->monthly_cost_usd));
    json_object_set_new(out, "prunable_monthly_cost_usd",
                        json_real(summary->prunable_monthly_cost_usd));
    json_object_set_new(out, "by_verdict", by_verdict);
    json_object_set_new(out, "price_per_key_month_usd", json_real(options->price_usd));
    json_object_set_new(out, "trust_domain", string_or_null(options->trust_domain));
    json_object_set_new(out, "region", json_string(run->aws.region));
    json_object_set_new(out, "stale_alias_age", json_string(stale));
    json_object_set_new(out, "orphan_key_age", json_string(orphan));
    json_object_set_new(out, "account_keys", json_integer((json_int_t)run->account.account_keys));
    json_object_set_new(out, "account_aliases", json_integer((json_int_t)run->account.alias_count));
    json_object_set_new(out, "undescribed_keys",
                        json_integer((json_int_t)run->account.undescribed));
    json_object_set_new(out, "tags", json_string(tags));
    json_object_set_new(out, "tagged_keys", json_integer((json_int_t)run->account.tagged_keys));
    json_object_set_new(out, "kms_calls", calls);
    return out;
}

static void list_json(const keys_run *run, const cli_options *options,
                      const estate_summary *summary)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < run->account.key_count; i++)
        json_array_append_new(keys, key_json(&run->account.keys[i]));
    print_json(
        json_pack("{s:o, s:o}", "keys", keys, "summary", summary_json(run, options, summary)));
}

/* Column widths grow to the widest cell. */
enum { COLUMNS = 9 };
static const char *const column_titles[COLUMNS] = {"VERDICT",       "KEY ID",       "TRUST DOMAIN",
                                                   "SERVER ID",     "SPIRE KEY ID", "CREATED",
                                                   "ALIAS UPDATED", "TAG UPDATED",  "$/MONTH"};

/* spire-last-update's age; "inactive" (spire-active not "true"), "undated",
 * "malformed"; "-" without SPIRE's tags. */
static void tag_cell(const estate_key *key, double now_s, char *out, size_t size)
{
    int64_t last_update = 0;
    if (key->tags_say == ESTATE_TAGS_NONE)
        snprintf(out, size, "-");
    else if (key->tags.active == NULL || strcmp(key->tags.active, "true") != 0)
        snprintf(out, size, "inactive");
    else if (key->tags.last_update == NULL)
        snprintf(out, size, "undated");
    else if (!tag_mode_parse_time(key->tags.last_update, &last_update))
        snprintf(out, size, "malformed");
    else
        cli_format_age((double)last_update, now_s, out, size);
}

static void table_row(const estate_key *key, double now_s, double price, char cells[COLUMNS][128])
{
    snprintf(cells[0], 128, "%s", estate_verdict_name(key->verdict));
    snprintf(cells[1], 128, "%s", key->key_id);
    snprintf(cells[2], 128, "%s", key->trust_domain ? key->trust_domain : "-");
    snprintf(cells[3], 128, "%s", key->server_id ? key->server_id : "-");
    snprintf(cells[4], 128, "%s", key->spire_key_id ? key->spire_key_id : "-");
    cli_format_age(key->described ? key->created : 0, now_s, cells[5], 128);
    cli_format_age(key->alias ? key->alias_last_updated : 0, now_s, cells[6], 128);
    tag_cell(key, now_s, cells[7], 128);
    snprintf(cells[8], 128, "$%.2f", key->verdict == ESTATE_PENDING_DELETION ? 0.0 : price);
}

static void print_cells(char cells[COLUMNS][128], const size_t *widths)
{
    for (int c = 0; c < COLUMNS; c++)
        printf(c + 1 < COLUMNS ? "%-*s  " : "%*s\n", (int)widths[c], cells[c]);
}

static void list_table_rows(const keys_run *run, double price)
{
    size_t widths[COLUMNS];
    char cells[COLUMNS][128];
    for (int c = 0; c < COLUMNS; c++)
        widths[c] = strlen(column_titles[c]);
    for (size_t i = 0; i < run->account.key_count; i++) {
        table_row(&run->account.keys[i], run->account.now_s, price, cells);
        for (int c = 0; c < COLUMNS; c++)
            widths[c] = strlen(cells[c]) > widths[c] ? strlen(cells[c]) : widths[c];
    }
    for (int c = 0; c < COLUMNS; c++)
        snprintf(cells[c], 128, "%s", column_titles[c]);
    print_cells(cells, widths);
    for (size_t i = 0; i < run->account.key_count; i++) {
        table_row(&run->account.keys[i], run->account.now_s, price, cells);
        print_cells(cells, widths);
    }
}

static void list_table(const keys_run *run, const cli_options *options,
                       const estate_summary *summary)
{
    if (run->account.key_count > 0) {
        list_table_rows(run, options->price_usd);
        printf("\n");
    }
    printf("%zu SPIRE keys%s%s in %s (the account has %zu keys, %zu aliases)\n", summary->keys,
           options->trust_domain ? " of " : "", options->trust_domain ? options->trust_domain : "",
           run->aws.region, run->account.account_keys, run->account.alias_count);
    const char *separator = "  ";
    for (int v = 0; v < ESTATE_VERDICT_COUNT; v++) {
        printf("%s%s %zu", separator, estate_verdict_name((estate_verdict)v),
               summary->by_verdict[v]);
        separator = ", ";
    }
    printf("\nmonthly cost $%.2f; prunable %zu keys, $%.2f a month\n", summary->monthly_cost_usd,
           summary->prunable, summary->prunable_monthly_cost_usd);
    if (summary->prunable > 0)
        printf("see the plan: spire-aws-kms keys prune --trust-domain TD\n");
}

int cli_keys_list(const cli_options *options)
{
    keys_run run = {0};
    int rc = open_and_scan(options, &run);
    if (rc != CLI_EXIT_OK)
        return rc;
    estate_summary summary;
    estate_summarize(&run.account, options->price_usd, &summary);
    if (options->json)
        list_json(&run, options, &summary);
    else
        list_table(&run, options, &summary);
    close_run(&run);
    return CLI_EXIT_OK;
}

/* ---- keys prune -------------------------------------------------------------------- */

typedef struct {
    size_t delete_alias, schedule, by_result[ESTATE_UNKNOWN + 1];
    size_t keys_freed;
} prune_counts;

static void count_plan(const estate_plan *plan, prune_counts *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < plan->count; i++) {
        const estate_action *action = &plan->items[i];
        if (action->kind == ESTATE_DELETE_ALIAS)
            out->delete_alias++;
        else
            out->schedule++;
        out->by_result[action->result]++;
        if (action->kind == ESTATE_SCHEDULE_KEY_DELETION &&
            (action->result == ESTATE_DONE || action->result == ESTATE_PLANNED))
            out->keys_freed++;
    }
}

static json_t *action_json(const estate_action *action)
{
    json_t *item = json_object();
    json_object_set_new(item, "action", json_string(estate_action_name(action->kind)));
    if (action->kind == ESTATE_DELETE_ALIAS) {
        json_object_set_new(item, "alias", string_or_null(action->alias));
        json_object_set_new(item, "target_key_id", json_string(action->key_id));
    } else {
        json_object_set_new(item, "key_id", json_string(action->key_id));
    }
    json_object_set_new(item, "reason", string_or_null(action->reason));
    json_object_set_new(item, "result", json_string(estate_result_name(action->result)));
    json_object_set_new(item, "detail", string_or_null(action->detail));
    return item;
}

static void prune_json(const cli_options *options, const estate_plan *plan,
                       const prune_counts *counts)
{
    json_t *actions = json_array();
    for (size_t i = 0; i < plan->count; i++)
        json_array_append_new(actions, action_json(&plan->items[i]));
    json_t *results = json_object();
    for (int r = ESTATE_PLANNED; r <= ESTATE_UNKNOWN; r++)
        json_object_set_new(results, estate_result_name((estate_result)r),
                            json_integer((json_int_t)counts->by_result[r]));
    double freed = (double)counts->keys_freed * options->price_usd;
    json_t *summary = json_object();
    json_object_set_new(summary, "actions", json_integer((json_int_t)plan->count));
    json_object_set_new(summary, "delete_alias", json_integer((json_int_t)counts->delete_alias));
    json_object_set_new(summary, "schedule_key_deletion",
                        json_integer((json_int_t)counts->schedule));
    json_object_set_new(summary, "results", results);
    json_object_set_new(summary,
                        options->yes ? "monthly_cost_freed_usd" : "monthly_cost_to_free_usd",
                        json_real(freed));
    print_json(json_pack("{s:s, s:b, s:i, s:o, s:o}", "trust_domain", options->trust_domain,
                         "dry_run", !options->yes, "pending_window_days",
                         options->pending_window_days, "actions", actions, "summary", summary));
}

static void prune_table(const cli_options *options, const keys_run *run, const estate_plan *plan,
                        const prune_counts *counts)
{
    char stale[32], orphan[32];
    cli_format_duration(run->ages.stale_alias_age_ms, stale, sizeof stale);
    cli_format_duration(run->ages.orphan_key_age_ms, orphan, sizeof orphan);
    printf("%s for trust domain %s in %s (stale alias age %s, orphan key age %s):\n",
           options->yes ? "Pruned" : "Plan", options->trust_domain, run->aws.region, stale, orphan);
    for (size_t i = 0; i < plan->count; i++) {
        const estate_action *action = &plan->items[i];
        const char *subject = action->kind == ESTATE_DELETE_ALIAS ? action->alias : action->key_id;
        if (options->yes)
            printf("  %-12s ", estate_result_name(action->result));
        printf("  %-21s  %s\n      %s\n", estate_action_name(action->kind), subject,
               options->yes && action->detail ? action->detail : action->reason);
    }
    if (plan->count == 0)
        printf("  nothing to prune\n");
    double freed = (double)counts->keys_freed * options->price_usd;
    if (!options->yes) {
        printf("%zu actions: %zu alias deletions, %zu key deletions (frees $%.2f a month)\n",
               plan->count, counts->delete_alias, counts->schedule, freed);
        if (plan->count > 0)
            printf("Dry run: nothing was changed. Run again with --yes to carry it out.\n");
        return;
    }
    printf("%zu done, %zu already done, %zu skipped, %zu failed, %zu unknown; freed $%.2f a "
           "month\n",
           counts->by_result[ESTATE_DONE], counts->by_result[ESTATE_ALREADY_DONE],
           counts->by_result[ESTATE_SKIPPED], counts->by_result[ESTATE_FAILED],
           counts->by_result[ESTATE_UNKNOWN], freed);
}

int cli_keys_prune(const cli_options *options)
{
    keys_run run = {0};
    int rc = open_and_scan(options, &run);
    if (rc != CLI_EXIT_OK)
        return rc;
    estate_plan plan = {0};
    if (estate_plan_prune(&run.account, options->trust_domain, &run.ages, &plan) != 0) {
        fprintf(stderr, "spire-aws-kms keys prune: out of memory\n");
        close_run(&run);
        return CLI_EXIT_PROBLEM;
    }
    if (options->yes) {
        aws_call_ctx call = {0};
        estate_prune_options prune = {
            .kms = run.aws.kms,
            .call = &call,
            .trust_domain = options->trust_domain,
            .ages = &run.ages,
            .pending_window_days = options->pending_window_days,
            .progress = on_prune_progress,
            .progress_ctx = &run.progress,
        };
        estate_prune_run(&prune, &plan);
        progress_clear(&run.progress);
    }
    prune_counts counts;
    count_plan(&plan, &counts);
    if (options->json)
        prune_json(options, &plan, &counts);
    else
        prune_table(options, &run, &plan, &counts);
    estate_plan_clear(&plan);
    close_run(&run);
    bool problems = counts.by_result[ESTATE_FAILED] + counts.by_result[ESTATE_UNKNOWN] > 0;
    return problems ? CLI_EXIT_PROBLEM : CLI_EXIT_OK;
}
