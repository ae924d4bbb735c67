/*
 * sigconf: berth's peer-suite helper (tests/peersuite_test.go). It starts a program with a given signal
 * state, the way a shell running `nohup` or `trap '' INT`, or a parent that blocked signals, would:
 *
 *     sigconf IGNORED BLOCKED CMD [ARG...]
 *
 * IGNORED and BLOCKED are comma-separated signal numbers ("-" for none). The signals in IGNORED get the
 * SIG_IGN disposition, the ones in BLOCKED are added to the signal mask, then CMD is executed. An init that
 * keeps the state it was started with passes both on to its child.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int each(const char *csv, int (*fn)(int, void *), void *arg) {
	char buf[256];
	if (strcmp(csv, "-") == 0)
		return 0;
	if (strlen(csv) >= sizeof buf)
		return -1;
	strcpy(buf, csv);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		char *end;
		long n = strtol(tok, &end, 10);
		if (*end || n < 1 || n > 64 || fn((int)n, arg) != 0)
			return -1;
	}
	return 0;
}

static int ignore(int sig, void *unused) {
	struct sigaction sa;
	(void)unused;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

static int add(int sig, void *set) { return sigaddset((sigset_t *)set, sig); }

int main(int argc, char *argv[]) {
	sigset_t set;
	if (argc < 4) {
		fprintf(stderr, "usage: sigconf IGNORED BLOCKED CMD [ARG...]\n");
		return 64;
	}
	sigemptyset(&set);
	if (each(argv[1], ignore, NULL) != 0 || each(argv[2], add, &set) != 0) {
		fprintf(stderr, "sigconf: bad signal list\n");
		return 64;
	}
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		perror("sigconf: sigprocmask");
		return 70;
	}
	execvp(argv[3], argv + 3);
	perror(argv[3]);
	return 127;
}
