/* PLACEHOLDER until the go-plugin face lands. */
#include "plugin/plugin.h"

#include "keymanager/keymanager.h"

int plugin_serve(void)
{
    km_manager *manager = km_new();
    km_free(manager);
    return 1;
}
