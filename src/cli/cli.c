/* Operator command line (placeholder until the CLI lands). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cli_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("spire-aws-kms %s\n", KM_VERSION);
        return 0;
    }
    fprintf(stderr, "This is the aws_kms KeyManager plugin for SPIRE server; SPIRE starts it.\n");
    return 1;
}
