/* Operator command line: --help, --version, and `validate FILE` to check a
 * plugin configuration before restarting SPIRE with it. Anything else gets a
 * short explanation of what this binary is, and exit code 1. */
#include "cli/cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/hcl.h"
#include "keymanager/keymanager.h"

static const char placeholder_trust_domain[] = "example.org";

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: spire-aws-kms --help | --version | validate FILE [--trust-domain TD]\n"
            "\n"
            "  validate FILE   check a plugin configuration: the body of plugin_data\n"
            "                  or a plugin_data_file (HCL or JSON); FILE - reads stdin.\n"
            "                  Prints \"configuration is valid\" (exit 0) or one problem\n"
            "                  per line on stderr (exit 1).\n"
            "  --trust-domain  the SPIRE server's trust_domain (default: %s)\n",
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

/* Reads the whole file (at most HCL_MAX_INPUT bytes) as a C string. */
static char *read_config_file(const char *path, const char **problem)
{
    FILE *file = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (file == NULL) {
        *problem = strerror(errno);
        return NULL;
    }
    char *text = malloc((size_t)HCL_MAX_INPUT + 2);
    size_t length = fread(text, 1, (size_t)HCL_MAX_INPUT + 1, file);
    bool failed = ferror(file) != 0;
    if (file != stdin)
        fclose(file);
    text[length] = '\0';
    *problem = failed                   ? "read error"
               : length > HCL_MAX_INPUT ? "file is larger than 1 MiB"
               : strlen(text) != length ? "file contains a NUL byte"
                                        : NULL;
    if (*problem != NULL) {
        free(text);
        return NULL;
    }
    return text;
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
    char *text = read_config_file(path, &problem);
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
    free(text);
    for (size_t i = 0; i < notes.count; i++)
        fprintf(stderr, "%s\n", notes.items[i]);
    config_notes_clear(&notes);
    if (config == NULL)
        return 1;
    config_free(config);
    printf("configuration is valid\n");
    return 0;
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
    print_explanation();
    return 1;
}
