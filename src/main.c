/* Entry point: SPIRE starts us with the magic cookie in the environment and
 * gets the go-plugin server; anyone else gets the operator command line.
 * Either way, before any thread exists, secrets are kept out of freed memory
 * and core dumps (common/secrets.h; Configure with log_level "debug" turns
 * core dumps back on). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/secrets.h"
#include "plugin/plugin.h"

int main(int argc, char **argv)
{
    secrets_protect_process();
    const char *cookie = getenv(PLUGIN_COOKIE_KEY);
    if (cookie != NULL && strcmp(cookie, PLUGIN_COOKIE_VALUE) == 0)
        return plugin_serve();
    return cli_main(argc, argv);
}
