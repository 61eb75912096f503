/* libFuzzer target: arbitrary bytes as the AWS shared credentials and config
 * files, read from memory files (memfd) through the real file reader, and the
 * whole source chain resolved over them: profiles, role_arn/source_profile
 * chains, credential_source, web identity, credential_process, the container
 * URI check (its value from the input, for profiles that give nothing).
 * Input: credentials file, a NUL byte, config file; the first byte also
 * picks AWS_PROFILE. No process is run and nothing is connected to. Any
 * crash, sanitizer report or leak is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aws/credentials_internal.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char credentials_path[64];
    char config_path[64];
    const char *profile;
    char container_uri[256];
} fuzz_env;

static const char *lookup(void *ctx, const char *name)
{
    const fuzz_env *env = ctx;
    if (strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0)
        return env->credentials_path;
    if (strcmp(name, "AWS_CONFIG_FILE") == 0)
        return env->config_path;
    if (strcmp(name, "AWS_PROFILE") == 0)
        return env->profile;
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    if (strcmp(name, "AWS_CONTAINER_CREDENTIALS_FULL_URI") == 0)
        return env->container_uri[0] ? env->container_uri : NULL;
    return NULL;
}

static int memory_file(const uint8_t *data, size_t len, char *path, size_t path_size)
{
    int fd = memfd_create("fuzz-aws-file", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (len > 0 && write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const profiles[] = {NULL, "default", "a", "b"};
    log_set_level(LOG_ERROR);
    if (size < 1)
        return 0;
    const uint8_t *files = data + 1;
    size_t files_len = size - 1;
    const uint8_t *split = memchr(files, '\0', files_len);
    size_t credentials_len = split != NULL ? (size_t)(split - files) : files_len;
    const uint8_t *config = split != NULL ? split + 1 : files + files_len;
    size_t config_len = files_len - (size_t)(config - files);

    fuzz_env env = {.profile = profiles[data[0] % 4]};
    if (data[0] & 4) {
        const uint8_t *end = memchr(config, '\n', config_len);
        size_t line = end != NULL ? (size_t)(end - config) : config_len;
        line = line < sizeof env.container_uri - 1 ? line : sizeof env.container_uri - 1;
        memcpy(env.container_uri, config, line);
        env.container_uri[line] = '\0';
    }
    int credentials_fd =
        memory_file(files, credentials_len, env.credentials_path, sizeof env.credentials_path);
    int config_fd = memory_file(config, config_len, env.config_path, sizeof env.config_path);
    if (credentials_fd >= 0 && config_fd >= 0) {
        aws_cred_env cred_env = {.getenv = lookup, .ctx = &env};
        aws_credentials_options options = {.region = "us-east-2"};
        aws_cred_plan *plan = calloc(1, sizeof *plan);
        aws_error err;
        aws_error_clear(&err);
        if (plan != NULL && aws_cred_plan_resolve(&options, &cred_env, plan, &err) == 0)
            aws_cred_plan_clear(plan);
        free(plan);
    }
    if (credentials_fd >= 0)
        close(credentials_fd);
    if (config_fd >= 0)
        close(config_fd);

    char *text = malloc(credentials_len + 1);
    if (text != NULL) {
        memcpy(text, files, credentials_len);
        text[credentials_len] = '\0';
        aws_ini *ini = aws_ini_parse(text);
        aws_ini_get(ini, "default", "aws_secret_access_key");
        aws_ini_free(ini);
        free(text);
    }
    return 0;
}
