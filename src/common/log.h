/* Structured logging to stderr in hclog's JSON line format, which go-plugin
 * hosts (SPIRE) parse and re-log at the line's level. Thread-safe: each line
 * is written with a single write(2). Never pass secrets as message or field. */
#ifndef KM_LOG_H
#define KM_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LOG_TRACE = 0,
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
} log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
bool log_enabled(log_level level);

/* "trace", "debug", "info", "warn"/"warning", "error" (any case). */
bool log_parse_level(const char *text, log_level *out);
const char *log_level_name(log_level level);

/* Sends lines to fd instead of stderr (tests); -1 restores stderr. */
void log_set_fd(int fd);

/* Ends log_write's field list (a typed null pointer, as variadic calls need). */
#define LOG_END ((const char *)NULL)

/* One line: message plus string fields given as key, value pairs ending
 * with LOG_END: log_write(LOG_INFO, "kms", "key created", "key_id", id, LOG_END). */
void log_write(log_level level, const char *module, const char *message, ...)
    __attribute__((sentinel));

/* One line with a printf-formatted message and no fields. */
void log_writef(log_level level, const char *module, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats one line (with trailing newline) into a new malloc'd string;
 * fields is a NULL-terminated array of key, value pairs. For tests. */
char *log_format_line(log_level level, const char *module, const char *message,
                      const char *const *fields);

#endif
