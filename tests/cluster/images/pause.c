/*
 * The pod sandbox of the local cluster's real nodes (localhost/pause:1, built by
 * tests/cluster/build-tools into an OCI image): holds the pod's namespaces open. Blocks in
 * pause(), reaps the children it inherits as PID 1, and exits 0 on SIGTERM or SIGINT.
 * The same behaviour as Kubernetes' build/pause/linux/pause.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) {
  psignal(signo, "pause: shutting down, got signal");
  _exit(0);
}

static void sigreap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("pause (kubectl-automon local cluster) 1");
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not PID 1\n");

  struct sigaction down = {.sa_handler = sigdown};
  sigemptyset(&down.sa_mask);
  if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0) return 1;
  struct sigaction reap = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigemptyset(&reap.sa_mask);
  if (sigaction(SIGCHLD, &reap, NULL) < 0) return 2;

  for (;;) pause();
  return 42; /* not reached */
}
