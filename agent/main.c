/* SPDX-License-Identifier: MIT */
/*
 * main.c - vgpu-agent's command line: where it listens, with which token,
 * over which registry and mediator; then it serves until SIGINT or SIGTERM.
 * See vgpu-agent(8).
 *
 * Must never: listen on TCP without a token, take a token file that others
 * can read, or replace a file that is not a socket at the socket's path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"

#define DEFAULT_RUN_DIR "/run/vgpu"
#define TOKEN_MIN 16
#define TOKEN_MAX 4096

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vgpu-agent [--socket PATH] [--listen ADDRESS:PORT --token-file PATH]\n"
		"                  [--db PATH] [--run-dir DIR]\n\n"
		"The vgpu host agent: an HTTP/JSON API over the registry and the running\n"
		"mediator (docs/api.md), and its Prometheus metrics at /metrics.\n\n"
		"  --socket PATH       Unix socket to serve, mode 0600 (default RUN_DIR/agent.sock)\n"
		"  --listen ADDR:PORT  also serve TCP there (IPv4, or [IPv6]:PORT); needs\n"
		"                      --token-file\n"
		"  --token-file PATH   the bearer token TCP clients send: a file of 16 to 4096\n"
		"                      printable characters, readable by its owner only\n"
		"  --db PATH           the registry (default $%s, else %s)\n"
		"  --run-dir DIR       the mediator's run directory (default $VGPU_RUN_DIR,\n"
		"                      else %s)\n"
		"  --help, --version\n\n"
		"Exit status: 0 stopped by a signal, 1 cannot serve, 2 usage. See vgpu-agent(8).\n",
		VGPU_DB_ENV, VGPU_DEFAULT_DB_PATH, DEFAULT_RUN_DIR);
}

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vgpu-agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'vgpu-agent --help'.\n", stderr);
	return 2;
}

/* The token in @path, checked: a regular file, neither group nor others may
 * read or write it, 16 to 4096 printable ASCII characters (a trailing
 * newline dropped). */
static char *read_token(const char *path)
{
	char buf[TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "vgpu-agent: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		fprintf(stderr, "vgpu-agent: %s: the token file must be a regular file that only its "
				"owner can read (chmod 600)\n", path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			n = -1;
	if (n < TOKEN_MIN || n > TOKEN_MAX) {
		fprintf(stderr, "vgpu-agent: %s: the token must be 16 to 4096 printable characters, "
				"no spaces\n", path);
		return NULL;
	}
	return strdup(buf);
}

/* ADDRESS:PORT (an IPv4 address, or an IPv6 one in brackets) into @ss. */
static bool parse_listen(const char *s, struct sockaddr_storage *ss)
{
	char host[64], port[8];
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM },
			*res;
	const char *colon = strrchr(s, ':');
	size_t hlen;

	if (!colon || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
		return false;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	if (atoi(port) < 1 || atoi(port) > 65535 || getaddrinfo(host, port, &hints, &res) != 0)
		return false;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return true;
}

/* A listening Unix socket at @path, mode 0600; a stale socket there is
 * replaced, anything else is left alone. */
static int unix_listener(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "vgpu-agent: %s: the path is too long for a socket\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "vgpu-agent: %s exists and is not a socket\n", path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* 0600 from the start, not after a chmod */
	int bound = fd >= 0 ? bind(fd, (struct sockaddr *)&addr, sizeof(addr)) : -1;

	umask(old);
	if (fd < 0 || bound != 0 || chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
		fprintf(stderr, "vgpu-agent: cannot listen on %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "token-file", required_argument, NULL, 't' },
		{ "db", required_argument, NULL, 'd' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *listen_at = NULL, *token_file = NULL, *db = NULL;
	const char *run_dir = getenv("VGPU_RUN_DIR");
	char sock_buf[256];
	struct sockaddr_storage ss;
	struct agent a = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct http_listener ul = { .agent = &a, .fd = -1 }, tl = { .agent = &a, .fd = -1 };
	sigset_t sigs;
	int c, sig, rc = 1;
	bool owned = false;
	char *token = NULL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'l': listen_at = optarg; break;
		case 't': token_file = optarg; break;
		case 'd': db = optarg; break;
		case 'r': run_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("vgpu-agent %s\n", VGPU_VERSION); return 0;
		default:
			return usage_error("unknown option or missing value: %s",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument: %s", argv[optind]);
	if (!run_dir || run_dir[0] != '/')
		run_dir = DEFAULT_RUN_DIR;
	if (sock && sock[0] != '/')
		return usage_error("--socket %s: must be an absolute path", sock);
	if (db && !*db)
		return usage_error("--db: empty path");
	if (!listen_at != !token_file)
		return usage_error("%s", listen_at ? "--listen needs --token-file: TCP clients "
						     "must present a token"
						   : "--token-file is for --listen");
	if (listen_at && !parse_listen(listen_at, &ss))
		return usage_error("--listen %s: expected ADDRESS:PORT, e.g. 127.0.0.1:8480 or "
				   "[::1]:8480", listen_at);
	if (!sock) {
		if ((size_t)snprintf(sock_buf, sizeof(sock_buf), "%s/agent.sock", run_dir) >=
		    sizeof(sock_buf))
			return usage_error("--run-dir %s: too long", run_dir);
		sock = sock_buf;
	}
	a.db_path = vgpu_db_path(db);
	a.run_dir = run_dir;
	if (token_file && !(token = read_token(token_file)))
		return 1;
	/* The signals are waited for, not handled: blocked before the threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	ul.fd = unix_listener(sock);
	if (ul.fd < 0)
		goto out;
	if (http_start(&ul) != 0) {
		fprintf(stderr, "vgpu-agent: cannot serve %s\n", sock);
		goto out;
	}
	owned = true; /* libmicrohttpd closes the socket when it stops */
	if (listen_at) {
		tl.addr = (const struct sockaddr *)&ss;
		tl.token = token;
		tl.token_len = strlen(token);
		if (http_start(&tl) != 0) {
			fprintf(stderr, "vgpu-agent: cannot listen on %s\n", listen_at);
			goto out;
		}
	}
	fprintf(stderr, "vgpu-agent %s: serving %s%s%s (registry %s, mediator %s)\n", VGPU_VERSION,
		sock, listen_at ? " and " : "", listen_at ? listen_at : "", a.db_path, run_dir);
	sigwait(&sigs, &sig);
	rc = 0;
out:
	http_stop(&tl);
	http_stop(&ul);
	if (ul.fd >= 0) {
		if (!owned)
			close(ul.fd);
		unlink(sock);
	}
	agent_close(&a);
	free(token);
	return rc;
}
