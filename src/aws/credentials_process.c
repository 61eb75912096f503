/* Running a shared profile's credential_process: "/bin/sh -c <command>" in
 * its own process group, stdout captured (at most 64 KiB), stderr discarded
 * (it may hold secrets), killed when it outlives the timeout. */
#include "aws/credentials_internal.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { MAX_PROCESS_OUTPUT = 64 * 1024 };

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_monotonic_ms();
    return left > 0 ? (int)left : 0;
}

static int spawn_shell(const char *command, int stdout_fd, pid_t *pid)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    int rc = posix_spawn(pid, "/bin/sh", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

/* Reads the child's stdout until EOF, the size limit or the deadline.
 * Returns 0 at EOF, 1 on timeout, -1 on overflow or read error. */
static int read_output(int fd, int64_t deadline, char *buf, size_t *len)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return -1;
        if (ready == 0)
            return 1;
        ssize_t n = read(fd, buf + *len, MAX_PROCESS_OUTPUT + 1 - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        *len += (size_t)n;
        if (*len > MAX_PROCESS_OUTPUT)
            return -1;
    }
}

/* Without pidfd (kernels before 5.3, valgrind): check every 10 ms. */
static int wait_exit_polling(pid_t pid, int64_t deadline)
{
    for (;;) {
        int status = 0;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return status;
        if ((done < 0 && errno != EINTR) || remaining_ms(deadline) == 0)
            return -1;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
}

/* Waits for the child to exit before the deadline. Returns its wait status,
 * or -1 on timeout (the child is then still to be reaped). */
static int wait_exit(pid_t pid, int64_t deadline)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return wait_exit_polling(pid, deadline);
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int ready;
    do {
        ready = poll(&pfd, 1, remaining_ms(deadline));
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready == 0)
        return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

static void kill_and_reap(pid_t pid)
{
    kill(-pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

static int exit_error(int status, aws_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        aws_error_set(err, AWS_ERR_CREDENTIALS, "command exited with status %d",
                      WEXITSTATUS(status));
    else
        aws_error_set(err, AWS_ERR_CREDENTIALS, "command killed by signal %d",
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

int aws_cred_run_process(const char *command, int timeout_ms, char **output, aws_error *err)
{
    *output = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        aws_error_set(err, AWS_ERR_INTERNAL, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid;
    int spawn_rc = spawn_shell(command, fds[1], &pid);
    close(fds[1]);
    if (spawn_rc != 0) {
        close(fds[0]);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot start /bin/sh: %s", strerror(spawn_rc));
        return -1;
    }
    int64_t deadline = clock_monotonic_ms() + timeout_ms;
    char *buf = malloc(MAX_PROCESS_OUTPUT + 2);
    size_t len = 0;
    int read_rc = buf != NULL ? read_output(fds[0], deadline, buf, &len) : -1;
    close(fds[0]);
    int status = read_rc == 0 ? wait_exit(pid, deadline) : -1;
    if (read_rc != 0 || status == -1)
        kill_and_reap(pid);
    int rc = -1;
    if (read_rc == 1 || (read_rc == 0 && status == -1))
        aws_error_set(err, AWS_ERR_CREDENTIALS, "command did not finish within %d ms", timeout_ms);
    else if (read_rc != 0)
        aws_error_set(err, AWS_ERR_CREDENTIALS, "command output unreadable or over 64 KiB");
    else
        rc = exit_error(status, err);
    if (rc != 0 && buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *output = buf;
    return 0;
}
