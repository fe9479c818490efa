/*
 * pause for Windows containers: holds the container open until it is stopped. A stop
 * arrives as a console control event (Ctrl-C, Ctrl-Break, or shutdown); each ends
 * pause with exit 0 so that kubelet sees a clean stop.
 *
 * Built by pause-build with x86_64-w64-mingw32-gcc -Os -Wall -Werror -static
 * -DVERSION=v<tag>-<rev>, then stripped.
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#ifndef VERSION
#define VERSION HEAD
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

static BOOL WINAPI on_control(DWORD event) {
  switch (event) {
  case CTRL_C_EVENT:
  case CTRL_BREAK_EVENT:
  case CTRL_CLOSE_EVENT:
  case CTRL_SHUTDOWN_EVENT:
    fprintf(stderr, "Shutting down, got signal\n");
    exit(0);
  default:
    return FALSE;
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (_stricmp(argv[i], "-v") == 0) {
      printf("pause.c %s\n", STR(VERSION));
      return 0;
    }
  }
  if (!SetConsoleCtrlHandler(on_control, TRUE)) {
    fprintf(stderr, "Error: could not set the console control handler\n");
    return 1;
  }
  Sleep(INFINITE);
  fprintf(stderr, "Error: infinite sleep ended\n");
  return 42;
}
