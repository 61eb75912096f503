/* hclog-compatible JSON line logger (see log.h). The timestamp layout is the
 * one go-plugin parses: 2006-01-02T15:04:05.000000Z07:00, six digits, UTC. */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum { MAX_FIELDS = 32 };

static atomic_int current_level = LOG_INFO;
static atomic_int output_fd = -1;

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

void log_set_level(log_level level) { atomic_store(&current_level, (int)level); }

log_level log_get_level(void) { return (log_level)atomic_load(&current_level); }

bool log_enabled(log_level level) { return (int)level >= atomic_load(&current_level); }

const char *log_level_name(log_level level)
{
    if ((int)level < LOG_TRACE || level > LOG_ERROR)
        return "info";
    return level_names[level];
}

bool log_parse_level(const char *text, log_level *out)
{
    if (text == NULL)
        return false;
    for (int i = LOG_TRACE; i <= LOG_ERROR; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

void log_set_fd(int fd) { atomic_store(&output_fd, fd); }

/* A JSON string for any bytes: invalid UTF-8 is replaced byte by byte with '?'
 * so that @message is always present and always a string. */
static json_t *safe_string(const char *text)
{
    json_t *value = json_string(text);
    if (value != NULL)
        return value;
    char *copy = strdup(text);
    if (copy == NULL)
        return json_string("");
    for (char *p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    }
    value = json_string(copy);
    free(copy);
    return value;
}

static void format_timestamp(char *buf, size_t size)
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(buf + n, size - n, ".%06ldZ", now.tv_nsec / 1000);
}

char *log_format_line(log_level level, const char *module, const char *message,
                      const char *const *fields)
{
    char timestamp[40];
    format_timestamp(timestamp, sizeof timestamp);

    json_t *line = json_object();
    json_object_set_new(line, "@level", json_string(log_level_name(level)));
    json_object_set_new(line, "@message", safe_string(message ? message : ""));
    json_object_set_new(line, "@module", safe_string(module ? module : "aws_kms"));
    json_object_set_new(line, "@timestamp", json_string(timestamp));
    for (size_t i = 0; fields != NULL && fields[i] != NULL && fields[i + 1] != NULL; i += 2) {
        if (fields[i][0] != '@')
            json_object_set_new(line, fields[i], safe_string(fields[i + 1]));
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(line);
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (with_newline == NULL) {
        free(text);
        return NULL;
    }
    with_newline[len] = '\n';
    with_newline[len + 1] = '\0';
    return with_newline;
}

static void emit(log_level level, const char *module, const char *message,
                 const char *const *fields)
{
    char *line = log_format_line(level, module, message, fields);
    if (line == NULL)
        return;
    int fd = atomic_load(&output_fd);
    ssize_t ignored = write(fd >= 0 ? fd : STDERR_FILENO, line, strlen(line));
    (void)ignored;
    free(line);
}

void log_write(log_level level, const char *module, const char *message, ...)
{
    if (!log_enabled(level))
        return;
    const char *fields[2 * MAX_FIELDS + 1];
    size_t count = 0;
    va_list args;
    va_start(args, message);
    for (const char *item = va_arg(args, const char *); item != NULL && count < 2 * MAX_FIELDS;
         item = va_arg(args, const char *)) {
        fields[count++] = item;
    }
    va_end(args);
    if (count % 2 == 1)
        count--; /* a key without a value is dropped */
    fields[count] = NULL;
    emit(level, module, message, fields);
}

void log_writef(log_level level, const char *module, const char *format, ...)
{
    if (!log_enabled(level))
        return;
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    const char *no_fields[] = {NULL};
    emit(level, module, message, no_fields);
}
