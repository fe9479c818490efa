/*
 * pause: PID 1 of a Kubernetes pod. It holds the pod's namespaces open, exits
 * cleanly on SIGINT/SIGTERM, and reaps every zombie reparented to it.
 *
 * Built by pause-build with -Os -Wall -Werror -static -DVERSION=v<tag>-<rev>.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION HEAD
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

/* Exit codes when a handler cannot be installed; kubelet logs show which one failed. */
enum { EXIT_SIGINT_HANDLER = 1, EXIT_SIGTERM_HANDLER = 2, EXIT_SIGCHLD_HANDLER = 3, EXIT_LOOP = 42 };

static void on_shutdown(int signo) {
  psignal(signo, "Shutting down, got signal");
  exit(0);
}

static void on_child(int signo) {
  (void)signo;
  /* One SIGCHLD can stand for many exited children: reap until none is left. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static int install(int signo, void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  return sigaction(signo, &sa, NULL);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcasecmp(argv[i], "-v") == 0) {
      printf("pause.c %s\n", STR(VERSION));
      return 0;
    }
  }

  if (getpid() != 1) {
    /* A warning, not an error: pause is also used outside pod sandboxes. */
    fprintf(stderr, "Warning: pause should be the first process\n");
  }

  if (install(SIGINT, on_shutdown, 0) < 0) return EXIT_SIGINT_HANDLER;
  if (install(SIGTERM, on_shutdown, 0) < 0) return EXIT_SIGTERM_HANDLER;
  if (install(SIGCHLD, on_child, SA_NOCLDSTOP) < 0) return EXIT_SIGCHLD_HANDLER;

  for (;;) {
    pause();
  }
  fprintf(stderr, "Error: infinite loop terminated\n");
  return EXIT_LOOP;
}
