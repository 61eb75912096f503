/* `doctor`: why a server cannot reach KMS, one line per check (✓ passed,
 * ✗ failed with the fix, ! a warning, - not checked). Checks, in order:
 * configuration (config_load, as `validate`), region, endpoint (DNS, TLS, an
 * HTTP answer), credentials (the source's name, never a value), identity (STS
 * GetCallerIdentity), clock skew against the endpoint's Date, each read
 * permission the plugin needs (tried with a harmless call: kms:ListAliases,
 * kms:ListKeys in alias mode, kms:DescribeKey, kms:GetPublicKey and
 * kms:ListResourceTags on one of the trust domain's keys, tag:GetResources in
 * tag mode), and the server id file. Denied permissions end with the IAM
 * policy to attach. Exit 1 when a check failed. Changes nothing in KMS or on
 * disk. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws/endpoints.h"
#include "aws/tagging.h"
#include "cli/cli_internal.h"
#include "common/file_read.h"
#include "common/log.h"
#include "common/secrets.h"
#include "keymanager/naming.h"
#include "keymanager/serverid.h"
#include "keymanager/tag_mode.h"

#define PROBE_TIMEOUT_MS   10000
#define MAX_ALIAS_PAGES    20 /* looking for one of the trust domain's aliases */
#define PLACEHOLDER_TD     "example.org"
#define MAX_DENIED         8
#define SERVER_ID_FILE_MAX 4096

typedef enum { MARK_OK, MARK_FAIL, MARK_WARN, MARK_SKIP } mark;

typedef struct {
    const cli_options *options;
    json_t *checks; /* --json: the lines as objects */
    int failed;
    plugin_config *config;
    const char *trust_domain;
    char server_id[SERVERID_LEN + 1]; /* from the server id file, "" when unknown */
    cli_aws aws;
    bool have_client;
    bool have_credentials;
    bool credentials_refused; /* identity said so: the permission checks would only repeat it */
    probe_result probe;
    bool probed;
    char identity[512];
    const char *denied[MAX_DENIED];
    size_t denied_count;
} doctor;

static const char *const marks[] = {"✓", "✗", "!", "-"};
static const char *const mark_names[] = {"ok", "fail", "warn", "skip"};

static void report(doctor *d, mark m, const char *check, const char *fix, const char *format, ...)
    __attribute__((format(printf, 5, 6)));

/* One line: "✓ check: message", and for a failure "    fix: ...". */
static void report(doctor *d, mark m, const char *check, const char *fix, const char *format, ...)
{
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (m == MARK_FAIL)
        d->failed++;
    if (d->options->json) {
        json_t *item = json_pack("{s:s, s:s, s:s}", "check", check, "status", mark_names[m],
                                 "message", message);
        json_object_set_new(item, "fix", fix != NULL ? json_string(fix) : json_null());
        json_array_append_new(d->checks, item);
        return;
    }
    printf("%s %s: %s\n", marks[m], check, message);
    if (fix != NULL && m != MARK_OK)
        printf("    fix: %s\n", fix);
}

/* ---- configuration ---------------------------------------------------------------- */

static void check_configuration(doctor *d)
{
    const cli_options *o = d->options;
    d->trust_domain = o->trust_domain;
    if (o->config_path == NULL) {
        report(d, MARK_SKIP, "configuration", NULL,
               "not checked (give --config plugin_data.hcl to check it and use its settings)");
        return;
    }
    const char *problem = NULL;
    char *text = cli_read_config_file(o->config_path, &problem);
    if (text == NULL) {
        report(d, MARK_FAIL, "configuration", "give the path of the plugin_data body",
               "cannot read %s: %s", o->config_path, problem);
        return;
    }
    config_notes notes = {0};
    d->config = config_load(text, o->trust_domain ? o->trust_domain : PLACEHOLDER_TD, &notes);
    secret_free_string(text); /* may hold secret_access_key */
    char *joined = config_notes_join(&notes, "; ");
    config_notes_clear(&notes);
    if (d->config == NULL) {
        char fix[512];
        snprintf(fix, sizeof fix, "correct each problem (`spire-aws-kms validate %s` lists them)",
                 o->config_path);
        report(d, MARK_FAIL, "configuration", fix, "%s is not valid: %s", o->config_path,
               joined ? joined : "");
    } else {
        report(d, MARK_OK, "configuration", NULL, "%s is valid%s%s", o->config_path,
               o->trust_domain ? " for trust domain "
                               : " (no --trust-domain: checked with " PLACEHOLDER_TD ")",
               o->trust_domain ? o->trust_domain : "");
    }
    free(joined);
}

/* ---- region and endpoint ------------------------------------------------------------ */

static bool check_region(doctor *d)
{
    char problem[512];
    if (cli_resolve_region(d->options, d->config, &d->aws, problem, sizeof problem) != 0) {
        report(d, MARK_FAIL, "region",
               "give --region, set region in plugin_data, AWS_REGION, or region in the profile",
               "%s (profile \"%s\")", problem, d->aws.profile);
        return false;
    }
    report(d, MARK_OK, "region", NULL, "%s (from %s)", d->aws.region, d->aws.region_from);
    return true;
}

static const char *probe_fix(const probe_result *p)
{
    switch (p->failed_at) {
    case PROBE_DNS:
        return "check the region and endpoint names, and the DNS resolver (/etc/resolv.conf); "
               "without internet access, use a KMS VPC endpoint (endpoint = ...) or a proxy "
               "(HTTPS_PROXY)";
    case PROBE_CONNECT:
    case PROBE_TIMEOUT:
        return "a firewall, security group or missing route blocks the way to port 443: allow "
               "it, use a KMS VPC endpoint, or set HTTPS_PROXY (and NO_PROXY)";
    case PROBE_TLS:
        return "the server's certificate is not trusted: for a custom endpoint set ca_bundle in "
               "plugin_data; otherwise install the system CA certificates (ca-certificates) or "
               "trust your TLS-inspecting proxy's CA";
    default:
        return "check the endpoint URL";
    }
}

static void check_endpoint(doctor *d)
{
    char why[1024];
    if (cli_aws_open(d->options, d->config, &d->aws, why, sizeof why) != 0) {
        report(d, MARK_FAIL, "endpoint", "give a valid https:// URL, or none for the region's",
               "%s", why);
        return;
    }
    d->have_client = true;
    cli_probe_endpoint(d->aws.endpoint, d->config ? d->config->ca_bundle : NULL, PROBE_TIMEOUT_MS,
                       &d->probe);
    d->probed = true;
    const probe_result *p = &d->probe;
    if (p->failed_at != PROBE_OK) {
        report(d, MARK_FAIL, "endpoint", probe_fix(p), "%s: %s", d->aws.endpoint, p->detail);
        return;
    }
    char dns[64];
    if (p->via_proxy)
        snprintf(dns, sizeof dns, "via a proxy from the environment");
    else
        snprintf(dns, sizeof dns, "DNS %d address%s", p->addresses, p->addresses == 1 ? "" : "es");
    report(d, MARK_OK, "endpoint", NULL, "%s: %s, %s, reachable (HTTP %ld in %ld ms)",
           d->aws.endpoint, dns, p->https ? "TLS verified" : "plain http (no TLS)", p->http_status,
           p->elapsed_ms);
}

/* ---- credentials, identity, clock ------------------------------------------------------ */

static void check_credentials(doctor *d)
{
    if (!d->have_client) {
        report(d, MARK_SKIP, "credentials", NULL, "not checked (no KMS client)");
        return;
    }
    aws_credentials credentials;
    aws_error err = {0};
    if (aws_credentials_get(d->aws.credentials, NULL, &credentials, &err) != 0) {
        aws_credentials_clear(&credentials);
        report(d, MARK_FAIL, "credentials",
               "give the server credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile "
               "(AWS_PROFILE, --profile; for SSO run `aws sso login`), a web identity token, "
               "the container endpoint or an EC2 instance role",
               "%s", err.message);
        return;
    }
    d->have_credentials = true;
    bool from_profile = strcmp(credentials.source, "shared_files") == 0 ||
                        strcmp(credentials.source, "sso") == 0 ||
                        strcmp(credentials.source, "credential_process") == 0;
    report(d, MARK_OK, "credentials", NULL, "found (source: %s%s%s%s)", credentials.source,
           from_profile ? ", profile \"" : "", from_profile ? d->aws.profile : "",
           from_profile ? "\"" : "");
    aws_credentials_clear(&credentials);
}

static void check_identity(doctor *d)
{
    if (!d->have_credentials) {
        report(d, MARK_SKIP, "identity", NULL, "not checked (no credentials)");
        return;
    }
    aws_call_ctx call = {0};
    sts_identity identity;
    aws_error err = {0};
    if (sts_get_caller_identity(d->aws.kms, &call, &identity, &err) == 0) {
        snprintf(d->identity, sizeof d->identity, "%s", identity.arn);
        report(d, MARK_OK, "identity", NULL, "%s (account %s)", identity.arn, identity.account);
        return;
    }
    char why[1400];
    cli_explain_error(&err, "sts:GetCallerIdentity", why, sizeof why);
    d->credentials_refused = cli_error_is_bad_credentials(&err);
    report(d, MARK_FAIL, "identity",
           d->credentials_refused
               ? "correct the secret access key (or refresh the session: the token may have "
                 "expired); the key id is shown by `aws configure list`"
               : "STS must be reachable too (AWS_ENDPOINT_URL_STS for a custom endpoint)",
           "%s", why);
}

static void check_clock(doctor *d)
{
    if (!d->probed || d->probe.failed_at != PROBE_OK) {
        report(d, MARK_SKIP, "clock", NULL, "not checked (no answer from the endpoint)");
        return;
    }
    if (!d->probe.has_date) {
        report(d, MARK_SKIP, "clock", NULL, "not checked (the endpoint's answer has no Date)");
        return;
    }
    double skew = d->probe.skew_s;
    const char *direction = skew > 0 ? "behind" : "ahead of";
    double size = skew > 0 ? skew : -skew;
    if (size < 1.0) { /* Date has whole seconds */
        report(d, MARK_OK, "clock", NULL, "within 1 s of the endpoint's Date");
        return;
    }
    if (cli_clock_skew_ok(skew)) {
        report(d, MARK_OK, "clock", NULL, "%.0f s %s the endpoint's Date", size, direction);
        return;
    }
    report(d, MARK_FAIL, "clock",
           "synchronise the clock (chrony or systemd-timesyncd: `timedatectl status`)",
           "%.0f s %s the endpoint's Date: AWS refuses signatures more than 5 minutes off", size,
           direction);
}

/* ---- permissions ---------------------------------------------------------------------- */

static void note_denied(doctor *d, const char *action)
{
    if (d->denied_count < MAX_DENIED)
        d->denied[d->denied_count++] = action;
}

/* This server's id: key_identifier_value, or the server id file's; "" when unknown. */
static const char *own_server_id(const doctor *d)
{
    if (d->config != NULL && d->config->key_identifier_value != NULL)
        return d->config->key_identifier_value;
    return d->server_id;
}

/* Tag-based key discovery is on in the configuration given. */
static bool tag_mode(const doctor *d)
{
    return d->config != NULL && d->config->enable_tag_based_key_discovery;
}

#define POLICY_FIX "attach the IAM policy printed below"

/* Reports one tried permission from its call's outcome; denied_fix (NULL:
 * POLICY_FIX) is the fix when it was denied. */
static void permission_outcome(doctor *d, const char *action, int rc, const aws_error *err,
                               const char *what, const char *denied_fix)
{
    if (rc == 0) {
        report(d, MARK_OK, action, NULL, "allowed%s", what);
        return;
    }
    char why[1400];
    cli_explain_error(err, action, why, sizeof why);
    if (cli_error_is_access_denied(err)) {
        note_denied(d, action);
        report(d, MARK_FAIL, action, denied_fix != NULL ? denied_fix : POLICY_FIX,
               "denied%s (%s: %s)", what, err->code, err->message);
    } else {
        report(d, MARK_FAIL, action, "see the checks above", "%s", why);
    }
}

static void permission_result(doctor *d, const char *action, int rc, const aws_error *err,
                              const char *what)
{
    permission_outcome(d, action, rc, err, what, NULL);
}

/* The first alias of the trust domain (this server's when its id is known),
 * and the key it targets (target: 64 bytes). */
static int find_trust_domain_alias(doctor *d, char *alias, size_t size, char *target,
                                   aws_error *err)
{
    aws_call_ctx call = {0};
    char *td_prefix = naming_trust_domain_prefix(d->trust_domain);
    const char *server_id = own_server_id(d);
    char *server_prefix = server_id[0] ? naming_server_prefix(d->trust_domain, server_id) : NULL;
    char marker[sizeof((kms_alias_page *)0)->next_marker] = "";
    int rc = 0;
    alias[0] = '\0';
    for (int page_number = 0; page_number < MAX_ALIAS_PAGES && td_prefix != NULL; page_number++) {
        kms_alias_page page = {0};
        rc = kms_list_aliases(d->aws.kms, &call, NULL, marker[0] ? marker : NULL, 100, &page, err);
        for (size_t i = 0; rc == 0 && i < page.count; i++) {
            const char *name = page.aliases[i].alias_name;
            bool ours = server_prefix && strncmp(name, server_prefix, strlen(server_prefix)) == 0;
            if (strncmp(name, td_prefix, strlen(td_prefix)) == 0 && (alias[0] == '\0' || ours)) {
                snprintf(alias, size, "%s", name);
                snprintf(target, 64, "%s", page.aliases[i].target_key_id);
            }
        }
        bool more = rc == 0 && page.truncated && page.next_marker[0] != '\0';
        snprintf(marker, sizeof marker, "%s", page.next_marker);
        kms_alias_page_clear(&page);
        if (!more)
            break;
    }
    free(td_prefix);
    free(server_prefix);
    return rc;
}

/* kms:ListResourceTags (one page of the key's tags): the plugin reads a key's
 * tags in both modes, before every deletion (the deletion queue) and before
 * deleting a stale alias, and in alias mode to keep inherited tags fresh. */
static void check_tag_reads(doctor *d, const char *key_id, const char *alias)
{
    aws_call_ctx call = {0};
    aws_error err = {0};
    kms_tag_page tags = {0};
    int rc = kms_list_resource_tags(d->aws.kms, &call, key_id, NULL, 1, &tags, &err);
    kms_tag_page_clear(&tags);
    char what[500];
    snprintf(what, sizeof what, " (on key %s, the target of %s)", key_id, alias);
    permission_result(d, "kms:ListResourceTags", rc, &err, what);
}

static void check_key_reads(doctor *d)
{
    if (d->trust_domain == NULL) {
        report(d, MARK_SKIP, "kms:DescribeKey", NULL,
               "not tried (give --trust-domain to try it on one of the domain's aliases)");
        report(d, MARK_SKIP, "kms:GetPublicKey", NULL,
               "not tried (give --trust-domain to try it on one of the domain's aliases)");
        report(d, MARK_SKIP, "kms:ListResourceTags", NULL,
               "not tried (give --trust-domain to try it on one of the domain's keys)");
        return;
    }
    char alias[300], target[64] = "";
    aws_error err = {0};
    if (find_trust_domain_alias(d, alias, sizeof alias, target, &err) != 0 || alias[0] == '\0') {
        report(d, MARK_SKIP, "kms:DescribeKey", NULL,
               "not tried (no alias of trust domain %s found in the account)", d->trust_domain);
        report(d, MARK_SKIP, "kms:GetPublicKey", NULL,
               "not tried (no alias of trust domain %s found in the account)", d->trust_domain);
        report(d, MARK_SKIP, "kms:ListResourceTags", NULL,
               "not tried (no key of trust domain %s found by its alias)", d->trust_domain);
        return;
    }
    aws_call_ctx call = {0};
    char what[400];
    snprintf(what, sizeof what, " (on %s)", alias);
    kms_key_metadata key;
    int rc = kms_describe_key(d->aws.kms, &call, alias, &key, &err);
    permission_result(d, "kms:DescribeKey", rc, &err, what);
    kms_public_key public_key = {0};
    aws_error_clear(&err);
    rc = kms_get_public_key(d->aws.kms, &call, alias, &public_key, &err);
    kms_public_key_clear(&public_key);
    permission_result(d, "kms:GetPublicKey", rc, &err, what);
    check_tag_reads(d, target, alias);
}

/* tag:GetResources in tag mode: one page of this server's keys (spire-server-td
 * = TD and spire-server-id = its id when known), as its Configure asks. */
static void check_tag_listing(doctor *d)
{
    if (!tag_mode(d)) {
        report(d, MARK_SKIP, "tag:GetResources", NULL, "%s",
               d->config == NULL ? "not tried (give --config: it is tried when "
                                   "enable_tag_based_key_discovery = true)"
                                 : "not needed (enable_tag_based_key_discovery is off)");
        return;
    }
    static const char *const key_type[] = {"kms:key"};
    const char *const td[] = {d->trust_domain};
    const char *const id[] = {own_server_id(d)};
    tagging_tag_filter filters[2] = {{TAG_SERVER_TD, td, d->trust_domain != NULL ? 1 : 0}};
    size_t filter_count = 1;
    if (id[0][0] != '\0')
        filters[filter_count++] = (tagging_tag_filter){TAG_SERVER_ID, id, 1};
    tagging_get_resources_input input = {.resource_types = key_type,
                                         .resource_type_count = 1,
                                         .tag_filters = filters,
                                         .tag_filter_count = filter_count,
                                         .resources_per_page = 1};
    aws_call_ctx call = {0};
    aws_error err = {0};
    tagging_resource_page page;
    memset(&page, 0, sizeof page);
    int rc = tagging_get_resources(d->aws.kms, &call, &input, &page, &err);
    tagging_resource_page_clear(&page);
    kms_client_info info;
    kms_client_get_info(d->aws.kms, &info);
    char what[700];
    snprintf(what, sizeof what, " (%s = %s%s%s, at %s)", TAG_SERVER_TD,
             d->trust_domain != NULL ? d->trust_domain : "any",
             id[0][0] != '\0' ? ", " TAG_SERVER_ID " = " : "", id[0], info.tagging_endpoint);
    permission_outcome(d, "tag:GetResources", rc, &err, what,
                       POLICY_FIX " (tag:GetResources can only be granted by an identity-based "
                                  "policy, never by a KMS key policy)");
}

static void check_permissions(doctor *d)
{
    static const char *const tried[] = {"kms:ListAliases",      "kms:ListKeys",
                                        "kms:DescribeKey",      "kms:GetPublicKey",
                                        "kms:ListResourceTags", "tag:GetResources"};
    const char *why_not = !d->have_credentials             ? "no credentials"
                          : d->credentials_refused         ? "the credentials were refused"
                          : d->probe.failed_at != PROBE_OK ? "the endpoint cannot be reached"
                                                           : NULL;
    if (why_not != NULL) {
        for (size_t i = 0; i < sizeof tried / sizeof tried[0]; i++)
            report(d, MARK_SKIP, tried[i], NULL, "not tried (%s)", why_not);
        return;
    }
    aws_call_ctx call = {0};
    aws_error err = {0};
    kms_alias_page aliases = {0};
    int rc = kms_list_aliases(d->aws.kms, &call, NULL, NULL, 1, &aliases, &err);
    kms_alias_page_clear(&aliases);
    permission_result(d, "kms:ListAliases", rc, &err, "");
    if (tag_mode(d)) {
        report(d, MARK_SKIP, "kms:ListKeys", NULL,
               "not needed in tag mode (the tag sweep replaces the orphan sweep; keys list "
               "needs it)");
    } else {
        kms_key_page keys = {0};
        aws_error_clear(&err);
        rc = kms_list_keys(d->aws.kms, &call, NULL, 1, &keys, &err);
        kms_key_page_clear(&keys);
        permission_result(d, "kms:ListKeys", rc, &err, "");
    }
    check_key_reads(d);
    check_tag_listing(d);
}

/* ---- the server id file ----------------------------------------------------------------- */

/* The server id in path, into d->server_id ("" when it holds no UUID);
 * false with *problem set when the file cannot be read. */
static bool load_server_id(doctor *d, const char *path, file_problem *problem)
{
    d->server_id[0] = '\0';
    file_contents text;
    if (file_read_regular(path, SERVER_ID_FILE_MAX, &text, problem) != FILE_READ_OK)
        return problem->too_large; /* read, and not a UUID */
    if (!serverid_parse(text.data, d->server_id))
        d->server_id[0] = '\0';
    file_contents_wipe(&text);
    return true;
}

static void read_server_id(doctor *d, const char *path)
{
    file_problem problem;
    if (!load_server_id(d, path, &problem)) {
        report(d, MARK_FAIL, "server id file", "give SPIRE's user read access to it",
               "%s cannot be read: %s", path,
               problem.error_number != 0 ? strerror(problem.error_number) : problem.message);
    } else if (d->server_id[0] == '\0') {
        report(d, MARK_FAIL, "server id file",
               "restore the file from a backup (the server id names this server's keys: "
               "alias/SPIRE_SERVER/TD/<server id>/...), or remove it to start with new keys",
               "%s does not hold a UUID: the plugin refuses to start", path);
    }
}

static void check_server_id_file(doctor *d)
{
    if (d->config == NULL || d->config->key_identifier_file == NULL) {
        report(d, MARK_SKIP, "server id file", NULL,
               d->config ? "not used (key_identifier_value is set)"
                         : "not checked (give --config)");
        return;
    }
    const char *path = d->config->key_identifier_file;
    struct stat info;
    if (stat(path, &info) != 0) {
        report(d, errno == ENOENT ? MARK_WARN : MARK_FAIL, "server id file",
               "if this server ran before, restore the file: a new id means new keys, and the "
               "old ones are pruned by the other servers two weeks later",
               "%s %s", path,
               errno == ENOENT ? "does not exist yet: the plugin creates it (mode 0600) with a "
                                 "new server id at its first start"
                               : strerror(errno));
        return;
    }
    if (!S_ISREG(info.st_mode)) {
        report(d, MARK_FAIL, "server id file", "point key_metadata_file at a regular file",
               "%s is not a regular file", path);
        return;
    }
    if (info.st_mode & (S_IWGRP | S_IWOTH)) {
        report(d, MARK_FAIL, "server id file", "chmod 600 the file",
               "%s is writable by group or others (mode %04o): anyone who changes it changes "
               "which keys this server uses",
               path, (unsigned)(info.st_mode & 07777));
        return;
    }
    read_server_id(d, path);
    if (d->server_id[0] != '\0')
        report(d, MARK_OK, "server id file", NULL, "%s: mode %04o, server id %s", path,
               (unsigned)(info.st_mode & 07777), d->server_id);
}

/* ---- the policy for denied permissions ----------------------------------------------------- */

static json_t *policy_json(const doctor *d)
{
    json_t *actions = json_array();
    for (size_t i = 0; i < d->denied_count; i++)
        json_array_append_new(actions, json_string(d->denied[i]));
    return json_pack("{s:s, s:[{s:s, s:s, s:o, s:s}]}", "Version", "2012-10-17", "Statement", "Sid",
                     "SpireAwsKmsReads", "Effect", "Allow", "Action", actions, "Resource", "*");
}

static void print_policy(const doctor *d)
{
    json_t *policy = policy_json(d);
    char *text = json_dumps(policy, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(policy);
    printf("\nAttach this IAM policy to %s (the permissions that were denied):\n%s\n",
           d->identity[0] ? d->identity : "the identity", text ? text : "");
    bool tags_written = tag_mode(d) || (d->config != NULL && d->config->key_tag_count > 0);
    printf("The plugin also needs kms:CreateKey, kms:Sign, kms:CreateAlias, kms:UpdateAlias, "
           "kms:DeleteAlias, kms:ScheduleKeyDeletion%s; doctor does not try them: they change "
           "KMS.\n",
           tags_written ? ", kms:TagResource"
                        : " (and kms:TagResource when key_tags is set or keys carry spire-* tags "
                          "from a tag-mode period)");
    free(text);
}

int cli_doctor(const cli_options *options)
{
    log_set_level(options->debug ? LOG_DEBUG : LOG_ERROR);
    doctor d = {.options = options, .checks = options->json ? json_array() : NULL};
    check_configuration(&d);
    /* The server id, quietly, so the key reads can try this server's own alias. */
    file_problem unread;
    if (d.config != NULL && d.config->key_identifier_file != NULL)
        load_server_id(&d, d.config->key_identifier_file, &unread);
    if (check_region(&d))
        check_endpoint(&d);
    else
        report(&d, MARK_SKIP, "endpoint", NULL, "not checked (no region)");
    check_credentials(&d);
    check_identity(&d);
    check_clock(&d);
    check_permissions(&d);
    check_server_id_file(&d);
    if (options->json) {
        json_t *out = json_pack("{s:o, s:i, s:o}", "checks", d.checks, "failed", d.failed,
                                "iam_policy", d.denied_count ? policy_json(&d) : json_null());
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        if (d.denied_count > 0)
            print_policy(&d);
        if (d.failed)
            printf("\n%d check%s failed.\n", d.failed, d.failed == 1 ? "" : "s");
        else
            printf("\nAll checks passed.\n");
    }
    if (d.have_client)
        cli_aws_close(&d.aws);
    config_free(d.config);
    return d.failed ? CLI_EXIT_PROBLEM : CLI_EXIT_OK;
}
