/*
 * A child forks again (a shell running a pipeline, a daemon double-forking).
 * Run under the shim, so the backend and the core's fork handlers are up
 * before the first fork.  Exit 0 when the grandchild ran; a child stuck in
 * fork is killed by its alarm and the run fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_child(int depth)
{
	char *p = malloc(1000 * (size_t)depth + 1);
	if (!p)
		return 2;
	memset(p, depth, 1000 * (size_t)depth + 1);
	free(p);
	if (depth == 0)
		return 0;
	pid_t pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		alarm(5);
		_exit(run_child(depth - 1));
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return 4;
	if (!WIFEXITED(status)) {
		fprintf(stderr, "fork_nested: depth %d child killed by signal %d\n",
			depth - 1, WTERMSIG(status));
		return 5;
	}
	return WEXITSTATUS(status);
}

int main(void)
{
	return run_child(3);
}
