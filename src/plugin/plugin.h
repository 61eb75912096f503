/* The go-plugin face: handshake, the gRPC server on gRPC core, service
 * dispatch, the worker pool and the process lifecycle. */
#ifndef KM_PLUGIN_H
#define KM_PLUGIN_H

/* Name of the magic-cookie variable SPIRE sets (key and value "KeyManager"). */
#define PLUGIN_COOKIE_KEY   "KeyManager"
#define PLUGIN_COOKIE_VALUE "KeyManager"

/* Serves SPIRE until Shutdown, SIGTERM/SIGINT or the host's death.
 * Precondition: the magic cookie is present. Returns the exit code. */
int plugin_serve(void);

#endif
