/*
 * orphan: test helper. It forks a child that outlives it and exits at once, so
 * the child is reparented to PID 1 of its PID namespace. When the child exits
 * it becomes a zombie that only PID 1 can reap. Prints the orphan's pid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 1;
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    sleep(seconds);
    return 0;
  }
  printf("%d\n", (int)pid);
  fflush(stdout);
  return 0;
}
