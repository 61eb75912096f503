/* The go-plugin handshake: version negotiation, private socket directory and
 * the stdout line (see handshake.h). */
#include "plugin/handshake.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool handshake_version_offered(const char *offered, int version)
{
    if (offered == NULL || offered[0] == '\0')
        return true;
    const char *cursor = offered;
    while (*cursor != '\0') {
        char *end = NULL;
        errno = 0;
        long value = strtol(cursor, &end, 10);
        bool parsed = end != cursor && errno == 0;
        while (*end == ' ')
            end++;
        if (parsed && (*end == ',' || *end == '\0') && value == version)
            return true;
        const char *comma = strchr(cursor, ',');
        if (comma == NULL)
            break;
        cursor = comma + 1;
    }
    return false;
}

int handshake_format_line(char *buf, size_t size, const char *socket_path, bool multiplex)
{
    int n = snprintf(buf, size, "%d|%d|unix|%s|grpc|%s\n", HANDSHAKE_CORE_VERSION,
                     HANDSHAKE_APP_VERSION, socket_path, multiplex ? "|false" : "");
    if (n < 0 || (size_t)n >= size)
        return -1;
    return n;
}

static const char *non_empty_env(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

const char *handshake_base_dir(void)
{
    const char *dir = non_empty_env("PLUGIN_UNIX_SOCKET_DIR");
    if (dir == NULL)
        dir = non_empty_env("TMPDIR");
    return dir != NULL ? dir : "/tmp";
}

int handshake_make_socket_dir(const char *base, handshake_socket *out, char *error,
                              size_t error_size)
{
    static const char socket_name[] = "/plugin.sock";
    int n = snprintf(out->dir, sizeof out->dir, "%s/spire-aws-kms-XXXXXX", base);
    if (n < 0 || (size_t)n + strlen(socket_name) > HANDSHAKE_MAX_SOCKET_PATH) {
        snprintf(error, error_size, "socket directory %s: path too long for a unix socket", base);
        return -1;
    }
    if (mkdtemp(out->dir) == NULL) {
        snprintf(error, error_size, "cannot create a directory in %s: %s", base, strerror(errno));
        return -1;
    }
    if (chmod(out->dir, 0700) != 0) {
        snprintf(error, error_size, "chmod %s: %s", out->dir, strerror(errno));
        rmdir(out->dir);
        return -1;
    }
    snprintf(out->path, sizeof out->path, "%s%s", out->dir, socket_name);
    return 0;
}

void handshake_remove_socket_dir(const handshake_socket *socket)
{
    if (socket->path[0] != '\0')
        unlink(socket->path);
    if (socket->dir[0] != '\0')
        rmdir(socket->dir);
}

int handshake_announce(const char *line)
{
    if (fputs(line, stdout) == EOF || fflush(stdout) == EOF)
        return -1;
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0)
        return -1;
    int result = dup2(null_fd, STDOUT_FILENO) < 0 ? -1 : 0;
    close(null_fd);
    return result;
}
