/* SPDX-License-Identifier: MIT */
/*
 * exec.c - fork/exec with pipes, a deadline and bounded capture.
 *
 * Must never: run a shell, block past the deadline, or leave a child behind.
 * An exec failure in the child is reported through a close-on-exec pipe, so
 * "xe is not installed" is told apart from "xe ran and failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "vgpu_clock.h"
#include "vgpu_error.h"

struct capture {
	int fd;
	char *buf;
	size_t len;
};

static long long now_ms(void)
{
	return (long long)(vgpu_now_ns() / 1000000u);
}

/* Read what is available on @c; returns false at end of file. */
static bool drain(struct capture *c, size_t max_bytes, bool *truncated)
{
	char chunk[4096];
	ssize_t n = read(c->fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	size_t keep = (size_t)n;
	if (c->len + keep > max_bytes) {
		keep = max_bytes - c->len;
		*truncated = true;
	}
	memcpy(c->buf + c->len, chunk, keep);
	c->len += keep;
	c->buf[c->len] = '\0';
	return true;
}

static void child(const char *const argv[], int out_fd, int err_fd, int status_fd)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	setpgid(0, 0);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0)
		goto fail;
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], (char *const *)argv);
fail:;
	int e = errno;
	if (write(status_fd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

static int reap(pid_t pid)
{
	int wstatus;

	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	return 128 + WTERMSIG(wstatus);
}

int vgpu_exec(const char *const argv[], int timeout_ms, size_t max_bytes,
	      struct vgpu_exec_result *ret)
{
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, status_pipe[2] = { -1, -1 };
	struct capture cap[2] = { { -1, NULL, 0 }, { -1, NULL, 0 } };
	bool truncated = false, timed_out = false;
	int rc = VGPU_IO_ERROR, child_errno = 0;
	pid_t pid;

	if (!argv || !argv[0] || !ret)
		return VGPU_INVALID_PARAM;
	cap[0].buf = malloc(max_bytes + 1);
	cap[1].buf = malloc(max_bytes + 1);
	if (!cap[0].buf || !cap[1].buf) {
		rc = VGPU_NO_MEMORY;
		goto out;
	}
	cap[0].buf[0] = cap[1].buf[0] = '\0';
	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    pipe2(status_pipe, O_CLOEXEC) < 0)
		goto out;

	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0)
		child(argv, out_pipe[1], err_pipe[1], status_pipe[1]);
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(out_pipe[1]);
	close(err_pipe[1]);
	close(status_pipe[1]);
	out_pipe[1] = err_pipe[1] = status_pipe[1] = -1;

	/* Closed by a successful exec; carries errno when exec failed. */
	ssize_t n;
	while ((n = read(status_pipe[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	if (n == sizeof(child_errno)) {
		reap(pid);
		rc = child_errno == ENOENT ? VGPU_NOT_FOUND
		     : child_errno == EACCES || child_errno == EPERM ? VGPU_DENIED
								     : VGPU_IO_ERROR;
		goto out;
	}

	cap[0].fd = out_pipe[0];
	cap[1].fd = err_pipe[0];
	long long deadline = now_ms() + timeout_ms;
	int open_fds = 2;
	while (open_fds > 0) {
		struct pollfd pfd[2];
		int nfds = 0;
		long long left = deadline - now_ms();

		if (left <= 0) {
			timed_out = true;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (cap[i].fd >= 0) {
				pfd[nfds].fd = cap[i].fd;
				pfd[nfds].events = POLLIN;
				nfds++;
			}
		}
		int p = poll(pfd, (nfds_t)nfds, (int)(left > 1000 ? 1000 : left));
		if (p < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2 && p > 0; i++) {
			if (cap[i].fd < 0)
				continue;
			for (int j = 0; j < nfds; j++) {
				if (pfd[j].fd == cap[i].fd && pfd[j].revents &&
				    !drain(&cap[i], max_bytes, &truncated)) {
					cap[i].fd = -1;
					open_fds--;
				}
			}
		}
	}
	if (timed_out) {
		pid_t gone = 0;

		kill(-pid, SIGTERM);
		for (int i = 0; i < 100 && (gone = waitpid(pid, NULL, WNOHANG)) == 0; i++)
			usleep(10000);
		kill(-pid, SIGKILL);
		ret->status = gone == pid ? 128 + SIGTERM : reap(pid);
	} else {
		ret->status = reap(pid);
	}
	ret->out = cap[0].buf;
	ret->out_len = cap[0].len;
	ret->err = cap[1].buf;
	ret->err_len = cap[1].len;
	ret->truncated = truncated;
	cap[0].buf = cap[1].buf = NULL;
	rc = timed_out ? VGPU_TIMEOUT : VGPU_OK;
out:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (status_pipe[i] >= 0)
			close(status_pipe[i]);
	}
	free(cap[0].buf);
	free(cap[1].buf);
	return rc;
}

void vgpu_exec_result_free(struct vgpu_exec_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
