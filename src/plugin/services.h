/* The method table: every gRPC method this plugin serves, how it runs
 * (method_kind in call.h) and the handler that maps protobuf to the
 * keymanager. */
#ifndef KM_PLUGIN_SERVICES_H
#define KM_PLUGIN_SERVICES_H

#include <stddef.h>

#include "plugin/call.h"

/* The table to give server_start, whose user pointer must then be the
 * km_manager the handlers work on; *count receives its length. */
const method_def *services_methods(size_t *count);

#endif
