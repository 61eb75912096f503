/* Operator command line: what the binary does when it is run by a person
 * instead of by SPIRE (no magic cookie): --help, --version, and commands that
 * check a configuration before a SPIRE server is restarted with it. */
#ifndef KM_CLI_H
#define KM_CLI_H

/* Returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
