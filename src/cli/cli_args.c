/* The options of the operator commands: one table says which command takes
 * which option; values are checked here with the configuration's own rules
 * (trust domain, Go durations) and the plugin's bounds, so a command starts
 * only with settings the plugin itself would accept. Pure: no I/O. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "config/rules.h"
#include "keymanager/estate.h"

enum {
    FOR_LIST = 1 << CLI_KEYS_LIST,
    FOR_PRUNE = 1 << CLI_KEYS_PRUNE,
    FOR_DOCTOR = 1 << CLI_DOCTOR,
    FOR_ALL = FOR_LIST | FOR_PRUNE | FOR_DOCTOR,
};

typedef enum {
    OPT_REGION,
    OPT_PROFILE,
    OPT_ENDPOINT,
    OPT_JSON,
    OPT_DEBUG,
    OPT_HELP,
    OPT_TRUST_DOMAIN,
    OPT_STALE_ALIAS_AGE,
    OPT_ORPHAN_KEY_AGE,
    OPT_PRICE,
    OPT_YES,
    OPT_PENDING_WINDOW_DAYS,
    OPT_CONFIG,
    OPT_DESCRIBE_ALIASED,
} option_id;

typedef struct {
    const char *name;
    option_id id;
    bool takes_value;
    unsigned commands;
} option_spec;

static const option_spec options_table[] = {
    {"--region", OPT_REGION, true, FOR_ALL},
    {"--profile", OPT_PROFILE, true, FOR_ALL},
    {"--endpoint", OPT_ENDPOINT, true, FOR_ALL},
    {"--json", OPT_JSON, false, FOR_ALL},
    {"--debug", OPT_DEBUG, false, FOR_ALL},
    {"--help", OPT_HELP, false, FOR_ALL},
    {"-h", OPT_HELP, false, FOR_ALL},
    {"--trust-domain", OPT_TRUST_DOMAIN, true, FOR_ALL},
    {"--stale-alias-age", OPT_STALE_ALIAS_AGE, true, FOR_LIST | FOR_PRUNE},
    {"--orphan-key-age", OPT_ORPHAN_KEY_AGE, true, FOR_LIST | FOR_PRUNE},
    {"--price", OPT_PRICE, true, FOR_LIST | FOR_PRUNE},
    {"--yes", OPT_YES, false, FOR_PRUNE},
    {"--pending-window-days", OPT_PENDING_WINDOW_DAYS, true, FOR_PRUNE},
    {"--config", OPT_CONFIG, true, FOR_DOCTOR},
    {"--describe-aliased", OPT_DESCRIBE_ALIASED, false, FOR_LIST},
};
#define OPTION_COUNT (sizeof options_table / sizeof options_table[0])

const char *cli_command_name(cli_command command)
{
    switch (command) {
    case CLI_KEYS_LIST:
        return "keys list";
    case CLI_KEYS_PRUNE:
        return "keys prune";
    case CLI_DOCTOR:
        return "doctor";
    }
    return "?";
}

#define COMMON_HELP                                                                                \
    "  --region R               AWS region (else AWS_REGION, AWS_DEFAULT_REGION, the\n"            \
    "                           profile's region)\n"                                               \
    "  --profile P              shared profile (else AWS_PROFILE); an SSO profile uses\n"          \
    "                           the token `aws sso login` cached\n"                                \
    "  --endpoint URL           KMS endpoint (else AWS_ENDPOINT_URL_KMS,\n"                        \
    "                           AWS_ENDPOINT_URL, the region's)\n"                                 \
    "  --json                   machine output on stdout\n"                                        \
    "  --debug                  log every AWS call on stderr (hclog JSON lines)\n"                 \
    "\n"                                                                                           \
    "Exit: 0 success, 1 the command found a problem, 2 usage or access error.\n"

static const char list_help[] =
    "usage: spire-aws-kms keys list [--trust-domain TD] [options]\n"
    "\n"
    "Every SPIRE-managed KMS key of the account and region (by alias\n"
    "alias/SPIRE_SERVER/..., by description SPIRE_SERVER_KEY/... or SPIRE_SERVER/..., or by\n"
    "the spire-* tags of tag-based key discovery), with its verdict, taken by the plugin's\n"
    "own fleet rules:\n"
    "  live              an alias refreshed within the stale alias age targets it, or its\n"
    "                    tags keep it alive (spire-active=true, a recent spire-last-update)\n"
    "  stale-alias       only aliases older than the stale alias age (a dead server): prunable\n"
    "  orphan            no alias, and older than the orphan key age, or tagged active with a\n"
    "                    stale spire-last-update, or tagged inactive and old: prunable\n"
    "  young-orphan      no alias, younger than the orphan key age\n"
    "  pending-deletion  already scheduled for deletion (costs nothing)\n"
    "  disabled          no alias, not enabled\n"
    "  malformed-tags    spire-* tags no server judges (spire-last-update not Unix seconds):\n"
    "                    kept for ever, look at it by hand\n"
    "and what the keys cost a month. Changes nothing. A key an alias targets is judged by\n"
    "its aliases and tags, without DescribeKey: its key_spec, state and created are shown\n"
    "only with --describe-aliased. Without tag:GetResources, a warning says the tags were\n"
    "not read, and keys are judged by their aliases and descriptions alone.\n"
    "\n"
    "  --trust-domain TD        only the keys of trust domain TD\n"
    "  --describe-aliased       also DescribeKey each key a SPIRE alias targets (one more\n"
    "                           call per such key)\n"
    "  --stale-alias-age D      default 336h (14 days), at least 168h\n"
    "  --orphan-key-age D       default 48h, at least 24h\n"
    "  --price USD              price of a key-month (default 1.00)\n" COMMON_HELP;

static const char prune_help[] =
    "usage: spire-aws-kms keys prune --trust-domain TD [--yes] [options]\n"
    "\n"
    "The plan the plugin's fleet tasks would carry out in trust domain TD: delete each stale\n"
    "alias of a dead server and schedule its key's deletion when no other alias targets it;\n"
    "schedule each orphan key's deletion (by description, or by the tag sweep's rules). A\n"
    "key tagged spire-active=true is tagged spire-active=false before it is scheduled, as\n"
    "the plugin does. Without --yes the plan is printed and nothing changes. With --yes\n"
    "each step first re-reads KMS (the alias still stale, no alias on the key, SPIRE's\n"
    "description or spire-server-td tag of TD, no tags keeping it alive), then acts; a\n"
    "lost answer is read back and reported as KMS shows it. Never touches a key a live\n"
    "alias or live tags keep, another trust domain, or a key without SPIRE's marks.\n"
    "\n"
    "  --trust-domain TD        the trust domain to prune (required)\n"
    "  --yes                    carry the plan out\n"
    "  --pending-window-days N  KMS waiting period before deletion, 7..30 (default 7)\n"
    "  --stale-alias-age D      default 336h (14 days), at least 168h\n"
    "  --orphan-key-age D       default 48h, at least 24h\n"
    "  --price USD              price of a key-month (default 1.00)\n" COMMON_HELP;

static const char doctor_help[] =
    "usage: spire-aws-kms doctor [--config plugin_data.hcl] [--trust-domain TD] [options]\n"
    "\n"
    "Why a server cannot reach KMS: one line per check, ✓ or ✗ with the fix:\n"
    "configuration valid; region and endpoint (DNS, TLS, reachable); credentials found\n"
    "(the source, never a value); identity (STS GetCallerIdentity); clock skew against\n"
    "AWS's Date; each read permission the plugin needs (kms:ListAliases, kms:ListKeys in\n"
    "alias mode, kms:DescribeKey, kms:GetPublicKey and kms:ListResourceTags on one of TD's\n"
    "keys, tag:GetResources when the configuration turns tag mode on), with the IAM policy\n"
    "to attach for those denied; the server id file (exists, mode, UUID). Changes nothing.\n"
    "\n"
    "  --config FILE            the plugin_data body (HCL or JSON), checked as `validate`\n"
    "                           does; its region, endpoint, keys and server id file are\n"
    "                           used\n"
    "  --trust-domain TD        the server's trust domain\n" COMMON_HELP;

const char *cli_command_help(cli_command command)
{
    switch (command) {
    case CLI_KEYS_LIST:
        return list_help;
    case CLI_KEYS_PRUNE:
        return prune_help;
    case CLI_DOCTOR:
        return doctor_help;
    }
    return "";
}

static const option_spec *find_option(const char *name, size_t name_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strlen(options_table[i].name) == name_len &&
            strncmp(options_table[i].name, name, name_len) == 0)
            return &options_table[i];
    }
    return NULL;
}

/* The closest option of this command, for "did you mean". */
static const char *closest_option(cli_command command, const char *name)
{
    const char *best = NULL;
    size_t best_distance = 3; /* at most two edits */
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (!(options_table[i].commands & (1u << command)))
            continue;
        size_t distance = rules_edit_distance(name, options_table[i].name, best_distance);
        if (distance < best_distance) {
            best = options_table[i].name;
            best_distance = distance;
        }
    }
    return best;
}

static int fail(char *error, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *error, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
    return -1;
}

static int parse_age(const char *name, const char *text, int64_t minimum_ms, int64_t *out,
                     char *error, size_t size)
{
    char why[256], shown[32];
    if (rules_duration_ms(text, out, why, sizeof why) != NULL)
        return fail(error, size, "%s: %s", name, why);
    if (*out < minimum_ms) {
        cli_format_duration(minimum_ms, shown, sizeof shown);
        return fail(error, size,
                    "%s must be at least %s: a shorter age could prune the keys of live servers",
                    name, shown);
    }
    return 0;
}

static int parse_window(const char *text, int *out, char *error, size_t size)
{
    char *end = NULL;
    errno = 0;
    long days = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || days < 7 || days > 30)
        return fail(error, size, "--pending-window-days must be a whole number from 7 to 30");
    *out = (int)days;
    return 0;
}

static int parse_price(const char *text, double *out, char *error, size_t size)
{
    char *end = NULL;
    errno = 0;
    double price = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(price) || price < 0)
        return fail(error, size, "--price must be a number of US dollars, 0 or more");
    *out = price;
    return 0;
}

static int parse_trust_domain(const char *text, const char **out, char *error, size_t size)
{
    char why[256];
    if (rules_trust_domain_problem(text, why, sizeof why) != NULL)
        return fail(error, size, "--trust-domain: %s", why);
    *out = text;
    return 0;
}

static int apply_value(const option_spec *spec, const char *value, cli_options *out, char *error,
                       size_t size)
{
    switch (spec->id) {
    case OPT_REGION:
        out->region = value;
        return 0;
    case OPT_PROFILE:
        out->profile = value;
        return 0;
    case OPT_ENDPOINT:
        out->endpoint = value;
        return 0;
    case OPT_CONFIG:
        out->config_path = value;
        return 0;
    case OPT_TRUST_DOMAIN:
        return parse_trust_domain(value, &out->trust_domain, error, size);
    case OPT_STALE_ALIAS_AGE:
        return parse_age(spec->name, value, CONFIG_MIN_STALE_ALIAS_AGE_MS, &out->stale_alias_age_ms,
                         error, size);
    case OPT_ORPHAN_KEY_AGE:
        return parse_age(spec->name, value, CONFIG_MIN_ORPHAN_KEY_AGE_MS, &out->orphan_key_age_ms,
                         error, size);
    case OPT_PRICE:
        return parse_price(value, &out->price_usd, error, size);
    case OPT_PENDING_WINDOW_DAYS:
        return parse_window(value, &out->pending_window_days, error, size);
    default:
        return 0;
    }
}

static void apply_flag(const option_spec *spec, cli_options *out)
{
    if (spec->id == OPT_JSON)
        out->json = true;
    else if (spec->id == OPT_DEBUG)
        out->debug = true;
    else if (spec->id == OPT_HELP)
        out->help = true;
    else if (spec->id == OPT_YES)
        out->yes = true;
    else if (spec->id == OPT_DESCRIBE_ALIASED)
        out->describe_aliased = true;
}

static int unknown_option(cli_command command, const char *arg, char *error, size_t size)
{
    if (arg[0] != '-')
        return fail(error, size, "%s takes no argument \"%s\"", cli_command_name(command), arg);
    const char *equals = strchr(arg, '=');
    const option_spec *known = find_option(arg, equals ? (size_t)(equals - arg) : strlen(arg));
    if (known != NULL) {
        cli_command owner = known->commands & FOR_PRUNE ? CLI_KEYS_PRUNE : CLI_DOCTOR;
        return fail(error, size, "%s is not an option of %s (it is one of %s)", known->name,
                    cli_command_name(command), cli_command_name(owner));
    }
    const char *suggestion = closest_option(command, arg);
    if (suggestion != NULL)
        return fail(error, size, "unknown option %s for %s (did you mean %s?)", arg,
                    cli_command_name(command), suggestion);
    return fail(error, size, "unknown option %s for %s", arg, cli_command_name(command));
}

static void set_defaults(cli_command command, cli_options *out)
{
    memset(out, 0, sizeof *out);
    out->command = command;
    out->stale_alias_age_ms = ESTATE_DEFAULT_STALE_ALIAS_AGE_MS;
    out->orphan_key_age_ms = ESTATE_DEFAULT_ORPHAN_KEY_AGE_MS;
    out->price_usd = ESTATE_DEFAULT_PRICE_USD;
    out->pending_window_days = 7;
}

int cli_parse_options(cli_command command, int argc, char **argv, cli_options *out, char *error,
                      size_t error_size)
{
    set_defaults(command, out);
    error[0] = '\0';
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *equals = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = equals != NULL ? (size_t)(equals - arg) : strlen(arg);
        const option_spec *spec = find_option(arg, name_len);
        if (spec == NULL || !(spec->commands & (1u << command)))
            return unknown_option(command, arg, error, error_size);
        if (!spec->takes_value) {
            if (equals != NULL)
                return fail(error, error_size, "%s takes no value", spec->name);
            apply_flag(spec, out);
            continue;
        }
        const char *value = equals != NULL ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL || value[0] == '\0')
            return fail(error, error_size, "%s needs a value", spec->name);
        if (apply_value(spec, value, out, error, error_size) != 0)
            return -1;
    }
    if (command == CLI_KEYS_PRUNE && out->trust_domain == NULL && !out->help)
        return fail(error, error_size, "keys prune needs --trust-domain TD");
    return 0;
}
