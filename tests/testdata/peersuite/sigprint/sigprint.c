/*
 * sigprint: the child berth's peer-suite tests (tests/peersuite_test.go) run under an init. It catches every
 * signal a process can catch and prints one line per signal it receives, so a test sees exactly which
 * signals the init passed on, in which order. C, not Go: the Go runtime keeps SIGPROF and signal 34 (glibc's
 * SIGRTMIN) to itself, so a Go child could not report them.
 *
 *     sigprint [-m MEMBERS] [-e SIG:CODE]... [-d SIG,SIG...]
 *
 * Output, one write(2) per line:
 *
 *     <role> ready pid=<pid> pgid=<pgid>
 *     <role> sig <number>
 *
 * -m N first forks N members (roles m1..mN) in the same process group and waits until each printed its
 * ready line, so group delivery shows as one line per member. -e SIG:CODE exits with CODE after printing
 * SIG. -d leaves the listed signals at their default action. SIGKILL and SIGSTOP cannot be caught; SIGCHLD
 * is not caught (it would report the members); 32 and 33 belong to the C library.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char role[16] = "main";
static int exit_code[65];
static int keep_default[65];

/* put appends s to buf at *n (async-signal-safe formatting). */
static void put(char *buf, size_t *n, const char *s) {
	while (*s && *n < 127)
		buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t *n, long v) {
	char tmp[24];
	int i = 0;
	if (v == 0)
		tmp[i++] = '0';
	while (v > 0) {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	}
	while (i > 0 && *n < 127)
		buf[(*n)++] = tmp[--i];
}

static void say(const char *what, long a, const char *mid, long b) {
	char buf[128];
	size_t n = 0;
	put(buf, &n, role);
	put(buf, &n, what);
	put_num(buf, &n, a);
	if (mid) {
		put(buf, &n, mid);
		put_num(buf, &n, b);
	}
	put(buf, &n, "\n");
	(void)!write(1, buf, n);
}

static void handler(int sig) {
	say(" sig ", sig, NULL, 0);
	if (exit_code[sig] >= 0)
		_exit(exit_code[sig]);
}

int main(int argc, char *argv[]) {
	int members = 0, opt, ready[2];
	struct sigaction sa;
	for (int s = 0; s <= 64; s++)
		exit_code[s] = -1;
	while ((opt = getopt(argc, argv, "m:e:d:")) != -1) {
		int s, c;
		char *tok;
		switch (opt) {
		case 'm':
			members = atoi(optarg);
			break;
		case 'e':
			if (sscanf(optarg, "%d:%d", &s, &c) != 2 || s < 1 || s > 64)
				goto usage;
			exit_code[s] = c;
			break;
		case 'd':
			for (tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
				s = atoi(tok);
				if (s < 1 || s > 64)
					goto usage;
				keep_default[s] = 1;
			}
			break;
		default:
			goto usage;
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask); /* one handler at a time: lines come out in delivery order */
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || s == 32 || s == 33 || keep_default[s])
			continue;
		if (sigaction(s, &sa, NULL) != 0) {
			perror("sigprint: sigaction");
			return 2;
		}
	}
	if (pipe(ready) != 0) {
		perror("sigprint: pipe");
		return 2;
	}
	for (int i = 1; i <= members; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("sigprint: fork");
			return 2;
		}
		if (pid == 0) {
			snprintf(role, sizeof role, "m%d", i);
			for (int s = 0; s <= 64; s++)
				exit_code[s] = -1;
			close(ready[0]);
			say(" ready pid=", (long)getpid(), " pgid=", (long)getpgrp());
			(void)!write(ready[1], "x", 1);
			close(ready[1]);
			for (;;)
				pause();
		}
		char c;
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "sigprint: member %d did not start\n", i);
			return 2;
		}
	}
	close(ready[0]);
	close(ready[1]);
	say(" ready pid=", (long)getpid(), " pgid=", (long)getpgrp());
	for (;;)
		pause();
usage:
	fprintf(stderr, "usage: sigprint [-m MEMBERS] [-e SIG:CODE]... [-d SIG,SIG...]\n");
	return 64;
}
