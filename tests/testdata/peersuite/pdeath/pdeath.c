/*
 * pdeath: the grandparent of an init in the parent-death tests (tests/peersuite_pdeath_test.go), in the role
 * of tini's test/pdeathsignal/stage_1.py. It makes itself a child subreaper and forks the parent, which
 * forks and execs ARGV (the init) and then waits to be killed; with -x the parent execs ARGV itself (unshare,
 * whose own child is the init). Once the test has killed the parent, the init is re-parented here, so its
 * exit status, which the dead parent can no longer see, is reported:
 *
 *     pdeath [-x] ARGV...
 *
 * Output, one write(2) per line:
 *
 *     pdeath parent pid=<pid>
 *     pdeath reaped pid=<pid> code=<exit status, or 128+signal>
 *
 * It exits 0 once it has no child left.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, long a, long b) {
	char buf[128];
	int n = snprintf(buf, sizeof buf, fmt, a, b);
	(void)!write(1, buf, (size_t)n);
}

int main(int argc, char *argv[]) {
	int execParent = 0, first = 1;
	if (argc > 1 && strcmp(argv[1], "-x") == 0) {
		execParent = 1;
		first = 2;
	}
	if (argc <= first) {
		fprintf(stderr, "usage: pdeath [-x] ARGV...\n");
		return 64;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		perror("pdeath: PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	pid_t parent = fork();
	if (parent < 0) {
		perror("pdeath: fork");
		return 2;
	}
	if (parent == 0) {
		if (!execParent) {
			pid_t init = fork();
			if (init < 0) {
				perror("pdeath: fork");
				_exit(2);
			}
			if (init > 0) {
				for (;;)
					pause(); /* until the test kills it */
			}
		}
		execvp(argv[first], argv + first);
		perror("pdeath: exec");
		_exit(127);
	}
	say("pdeath parent pid=%ld\n", (long)parent, 0);
	for (;;) {
		int st;
		pid_t pid = wait(&st);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			return 0; /* ECHILD */
		}
		say("pdeath reaped pid=%ld code=%ld\n", (long)pid, WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
	}
}
