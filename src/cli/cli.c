/* Operator command line: --help, --version, `validate FILE` to check a
 * plugin configuration before restarting SPIRE with it, and the commands
 * that read (and clean) the KMS estate: `keys list`, `keys prune`, `doctor`
 * (cli_keys.c, cli_doctor.c). Anything else gets a short explanation of
 * what this binary is, and exit code 1. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "common/file_read.h"
#include "common/secrets.h"
#include "config/config.h"
#include "config/hcl.h"
#include "keymanager/keymanager.h"

static const char placeholder_trust_domain[] = "example.org";

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: spire-aws-kms --help | --version\n"
            "       spire-aws-kms validate FILE [--trust-domain TD]\n"
            "       spire-aws-kms keys list [--trust-domain TD] [options]\n"
            "       spire-aws-kms keys prune --trust-domain TD [--yes] [options]\n"
            "       spire-aws-kms doctor [--config FILE] [--trust-domain TD] [options]\n"
            "\n"
            "  validate FILE   check a plugin configuration: the body of plugin_data\n"
            "                  or a plugin_data_file (HCL or JSON); FILE - reads stdin.\n"
            "                  Prints \"configuration is valid\" (exit 0) or one problem\n"
            "                  per line on stderr (exit 1).\n"
            "  --trust-domain  the SPIRE server's trust_domain (default: %s)\n"
            "  keys list       every SPIRE key in the account and region, its verdict\n"
            "                  (live, stale-alias, orphan, ...) and what it costs\n"
            "  keys prune      delete what dead servers left behind in one trust domain\n"
            "                  (a dry run unless --yes)\n"
            "  doctor          why a server cannot reach KMS: one line per check\n"
            "\n"
            "'spire-aws-kms COMMAND --help' describes each command and its options.\n",
            placeholder_trust_domain);
}

static void print_explanation(void)
{
    fprintf(
        stderr,
        "This binary is a plugin for SPIRE server (the aws_kms KeyManager: keys in AWS\n"
        "KMS). It is not meant to be executed directly: SPIRE server starts it and talks\n"
        "to it over go-plugin's gRPC protocol. Load it from server.conf:\n"
        "\n"
        "    KeyManager \"aws_kms\" {\n"
        "        plugin_cmd = \"/path/to/spire-aws-kms\"\n"
        "        plugin_data { region = \"us-east-2\"  key_metadata_file = \"./key_metadata\" }\n"
        "    }\n"
        "\n"
        "Run 'spire-aws-kms --help' for the operator commands, 'spire-aws-kms --version'\n"
        "for the version.\n");
}

/* Reads the whole file ("-": stdin; a pipe the shell made is read too) as a
 * C string, at most HCL_MAX_INPUT bytes. */
char *cli_read_config_file(const char *path, const char **problem)
{
    bool from_stdin = strcmp(path, "-") == 0;
    int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *problem = strerror(errno);
        return NULL;
    }
    file_contents text;
    file_problem why;
    file_read_result read = file_read_stream(fd, path, (size_t)HCL_MAX_INPUT, &text, &why);
    if (!from_stdin)
        close(fd);
    *problem = read != FILE_READ_OK ? (why.too_large ? "file is larger than 1 MiB" : "read error")
               : strlen(text.data) != text.len ? "file contains a NUL byte"
                                               : NULL;
    if (*problem != NULL) {
        file_contents_wipe(&text);
        return NULL;
    }
    return text.data;
}

static int validate_command(int argc, char **argv)
{
    const char *path = NULL, *trust_domain = NULL;
    bool usage_error = false;
    for (int i = 0; i < argc && !usage_error; i++) {
        if (strcmp(argv[i], "--trust-domain") == 0 && i + 1 < argc)
            trust_domain = argv[++i];
        else if (path == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
            path = argv[i];
        else
            usage_error = true;
    }
    if (path == NULL || usage_error) {
        print_usage(stderr);
        return 1;
    }
    const char *problem;
    char *text = cli_read_config_file(path, &problem);
    if (text == NULL) {
        fprintf(stderr, "%s: %s\n", path, problem);
        return 1;
    }
    if (trust_domain == NULL) {
        trust_domain = placeholder_trust_domain;
        fprintf(stderr, "note: no --trust-domain given; checking with %s\n", trust_domain);
    }
    config_notes notes = {0};
    plugin_config *config = config_load_checked(text, trust_domain, km_check_environment, &notes);
    secret_free_string(text); /* may hold secret_access_key */
    for (size_t i = 0; i < notes.count; i++)
        fprintf(stderr, "%s\n", notes.items[i]);
    config_notes_clear(&notes);
    if (config == NULL)
        return 1;
    config_free(config);
    printf("configuration is valid\n");
    return 0;
}

/* `keys list|prune ...` and `doctor ...`: options parsed, then run. */
static int estate_command(cli_command command, int argc, char **argv)
{
    cli_options options;
    char error[512];
    if (cli_parse_options(command, argc, argv, &options, error, sizeof error) != 0) {
        fprintf(stderr, "spire-aws-kms %s: %s\nRun 'spire-aws-kms %s --help' for its options.\n",
                cli_command_name(command), error, cli_command_name(command));
        return CLI_EXIT_USAGE;
    }
    if (options.help) {
        fputs(cli_command_help(command), stdout);
        return CLI_EXIT_OK;
    }
    switch (command) {
    case CLI_KEYS_LIST:
        return cli_keys_list(&options);
    case CLI_KEYS_PRUNE:
        return cli_keys_prune(&options);
    case CLI_DOCTOR:
        return cli_doctor(&options);
    }
    return CLI_EXIT_USAGE;
}

static int keys_command(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "list") == 0)
        return estate_command(CLI_KEYS_LIST, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "prune") == 0)
        return estate_command(CLI_KEYS_PRUNE, argc - 1, argv + 1);
    bool help = argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
    FILE *out = help ? stdout : stderr;
    if (!help)
        fprintf(stderr, "spire-aws-kms keys: give a subcommand, list or prune\n\n");
    fputs(cli_command_help(CLI_KEYS_LIST), out);
    fputs("\n", out);
    fputs(cli_command_help(CLI_KEYS_PRUNE), out);
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("spire-aws-kms %s\n", KM_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "validate") == 0)
        return validate_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "keys") == 0)
        return keys_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "doctor") == 0)
        return estate_command(CLI_DOCTOR, argc - 2, argv + 2);
    print_explanation();
    return 1;
}
