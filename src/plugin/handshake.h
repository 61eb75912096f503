/* The go-plugin handshake, as SPIRE's host expects it: the protocol versions
 * the host offers (PLUGIN_PROTOCOL_VERSIONS), a private socket directory
 * (PLUGIN_UNIX_SOCKET_DIR, else TMPDIR, else /tmp) and the one line written
 * on stdout: CORE|APP|unix|PATH|grpc|[|false]. Pure parts are unit-tested. */
#ifndef KM_PLUGIN_HANDSHAKE_H
#define KM_PLUGIN_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#define HANDSHAKE_CORE_VERSION 1
#define HANDSHAKE_APP_VERSION  1

/* Longest unix socket path the kernel accepts (sun_path minus the NUL). */
#define HANDSHAKE_MAX_SOCKET_PATH 107

/* True when offered (PLUGIN_PROTOCOL_VERSIONS: comma-separated integers) is
 * NULL or empty (no opinion) or lists version; unparsable items are skipped. */
bool handshake_version_offered(const char *offered, int version);

/* Formats the handshake line with its trailing newline. multiplex: the host
 * set PLUGIN_MULTIPLEX_GRPC, so a 7th field answers that we do not multiplex.
 * Returns the length, or -1 when it does not fit. */
int handshake_format_line(char *buf, size_t size, const char *socket_path, bool multiplex);

/* The directory our private directory goes into: PLUGIN_UNIX_SOCKET_DIR,
 * else TMPDIR, else /tmp (empty values count as unset). */
const char *handshake_base_dir(void);

typedef struct {
    char dir[HANDSHAKE_MAX_SOCKET_PATH + 1];   /* new private directory, mode 0700 */
    char path[HANDSHAKE_MAX_SOCKET_PATH + 16]; /* socket path inside dir */
} handshake_socket;

/* Creates a new private directory (mkdtemp, 0700) inside base and names the
 * socket in it. Returns 0, or -1 with a reason in error. */
int handshake_make_socket_dir(const char *base, handshake_socket *out, char *error,
                              size_t error_size);

/* Removes the socket (if still there) and the directory. */
void handshake_remove_socket_dir(const handshake_socket *socket);

/* Writes the line on stdout, flushes, then points stdout at /dev/null so that
 * nothing else can ever reach the host's handshake pipe. Returns 0 or -1. */
int handshake_announce(const char *line);

#endif
