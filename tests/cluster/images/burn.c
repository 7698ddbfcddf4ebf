/*
 * A CPU burner for the alert tests (localhost/automon-test/burn:1, built by
 * tests/cluster/build-tools into an OCI image): spins on one core until SIGTERM or SIGINT,
 * then exits 0. As PID 1 of its container it must handle SIGTERM itself (the kernel ignores
 * default-action signals for PID 1), or the kubelet would wait out the grace period.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int signo) {
  (void)signo;
  stop = 1;
}

int main(void) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) return 1;
  fprintf(stderr, "burn: spinning on one core until SIGTERM\n");
  volatile unsigned long spins = 0;
  while (!stop) spins++;
  fprintf(stderr, "burn: stopping\n");
  return 0;
}
