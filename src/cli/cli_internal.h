/* Private pieces of the operator command line (cli.c dispatches):
 *   cli_args.c     parsing and checking the options of each command (pure)
 *   cli_aws.c      region, profile, endpoint and credentials -> a KMS client,
 *                  and what a failed call means for an operator
 *   cli_keys.c     `keys list` and `keys prune` (estate.h does the work)
 *   cli_doctor.c   `doctor`: one line per check, ✓ or ✗ with the fix
 *   cli_probe.c    the endpoint probe: DNS, TLS, an HTTP answer and its Date
 * Exit codes: 0 success, 1 the command ran and found a problem, 2 usage or
 * access error. */
#ifndef KM_CLI_INTERNAL_H
#define KM_CLI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/kms.h"
#include "config/config.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_PROBLEM = 1, CLI_EXIT_USAGE = 2 };

typedef enum {
    CLI_KEYS_LIST,
    CLI_KEYS_PRUNE,
    CLI_DOCTOR,
} cli_command;

typedef struct {
    cli_command command;
    bool help; /* --help / -h: print the command's help, nothing else */
    /* common */
    const char *region;
    const char *profile;
    const char *endpoint;
    bool json;
    bool debug;
    /* keys list / keys prune / doctor */
    const char *trust_domain;
    int64_t stale_alias_age_ms;
    int64_t orphan_key_age_ms;
    double price_usd;
    bool yes;
    bool describe_aliased; /* keys list: also describe the keys SPIRE aliases target */
    int pending_window_days;
    const char *config_path; /* doctor */
} cli_options;

/* "keys list", "keys prune", "doctor". */
const char *cli_command_name(cli_command command);

/* Parses argv after the command words (argv[0] is the first option) for
 * command. Returns 0, or -1 with a one-line reason in error. Checks values:
 * trust domain, ages within the plugin's bounds, window 7..30, price >= 0. */
int cli_parse_options(cli_command command, int argc, char **argv, cli_options *out, char *error,
                      size_t error_size);

/* The help text of a command (for --help, and after a usage error). */
const char *cli_command_help(cli_command command);

/* ---- AWS access for the commands (cli_aws.c) ------------------------------- */

typedef struct {
    kms_client *kms;
    aws_credentials_provider *credentials;
    char region[64];
    char region_from[320]; /* "--region", "the configuration", "AWS_REGION", "profile ..." */
    char endpoint[512];    /* where KMS requests go */
    const char *profile;   /* the shared profile in use ("default" when none is named) */
} cli_aws;

/* Selects the profile (--profile sets AWS_PROFILE for the credential chain),
 * resolves the region (--region, the configuration's, then the AWS SDK
 * environment: AWS_REGION, AWS_DEFAULT_REGION, the profile's) and the endpoint, and makes the KMS
 * client with the plugin's credential chain. config may be NULL. Returns 0,
 * or -1 with a reason (no region, bad endpoint). */
int cli_aws_open(const cli_options *options, const plugin_config *config, cli_aws *out, char *error,
                 size_t error_size);
void cli_aws_close(cli_aws *aws);

/* Only the profile and region part of cli_aws_open (doctor reports them
 * even when no client can be made). Returns 0, or -1 with the reason (no
 * region from any source, a bad region name) in error. */
int cli_resolve_region(const cli_options *options, const plugin_config *config, cli_aws *out,
                       char *error, size_t error_size);

/* What a failed AWS call means and what to do, for an operator: e.g.
 * "the AWS credentials were refused (InvalidSignatureException): the secret
 * key is wrong or the session has expired". */
void cli_explain_error(const aws_error *err, const char *operation, char *out, size_t size);
/* True for answers that mean the credentials themselves were refused. */
bool cli_error_is_bad_credentials(const aws_error *err);
/* True for AccessDenied answers (a missing IAM permission). */
bool cli_error_is_access_denied(const aws_error *err);

/* ---- output helpers ----------------------------------------------------------- */

/* "2026-08-20T10:00:00Z"; "" for 0. */
void cli_format_time(double epoch_s, char *out, size_t size);
/* "3d", "5h", "40m", "12s" ago-style age of epoch_s at now_s; "-" for 0. */
void cli_format_age(double epoch_s, double now_s, char *out, size_t size);
/* "336h", "48h", "90m": a duration as the configuration writes it. */
void cli_format_duration(int64_t ms, char *out, size_t size);

/* A configuration file ("-": stdin) as a C string (malloc'd), or NULL with
 * *problem set; shared by validate and doctor --config. */
char *cli_read_config_file(const char *path, const char **problem);

/* ---- commands ---------------------------------------------------------------------- */

int cli_keys_list(const cli_options *options);
int cli_keys_prune(const cli_options *options);
int cli_doctor(const cli_options *options);

/* ---- the endpoint probe (cli_probe.c) ------------------------------------------------ */

typedef enum {
    PROBE_OK,
    PROBE_BAD_URL,
    PROBE_DNS,       /* the host name does not resolve */
    PROBE_CONNECT,   /* no TCP connection */
    PROBE_TLS,       /* TLS handshake or certificate verification failed */
    PROBE_TIMEOUT,   /* no answer in time */
    PROBE_TRANSPORT, /* any other failure before an HTTP answer */
} probe_stage;

typedef struct {
    probe_stage failed_at; /* PROBE_OK when an HTTP answer came back */
    char host[256];
    bool https;
    bool via_proxy; /* a proxy from the environment applies (DNS is its job) */
    int addresses;  /* DNS answers (0 when not resolved here) */
    long http_status;
    long elapsed_ms;
    bool has_date;
    double skew_s; /* AWS's Date minus our clock (middle of the exchange) */
    char detail[512];
} probe_result;

/* One unsigned GET of url: DNS, TCP, TLS (with ca_bundle when not NULL) and
 * an HTTP answer of any status, whose Date header gives the clock skew. */
void cli_probe_endpoint(const char *url, const char *ca_bundle, int timeout_ms, probe_result *out);

/* AWS rejects signatures more than 5 minutes off its clock. */
#define CLI_MAX_CLOCK_SKEW_S 300.0
bool cli_clock_skew_ok(double skew_s);

#endif
