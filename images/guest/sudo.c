/*
 * sudo for the kubevirt-ts test guest: installed set-user-ID root, it runs
 * the given command as root with no password, as the cloud images' default
 * users (cirros, fedora) may. Leading options are accepted and ignored,
 * except -i and -s, which start root's shell (login shell for -i).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int i = 1, login = 0, shell = 0;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    if (strcmp(argv[i], "-i") == 0) login = 1;
    else if (strcmp(argv[i], "-s") == 0) shell = 1;
    else if (strcmp(argv[i], "-u") == 0 || strcmp(argv[i], "-g") == 0) i++; /* only root is offered */
  }
  if (setgid(0) != 0 || setuid(0) != 0) {
    perror("sudo: cannot become root (is /usr/bin/sudo set-user-ID root?)");
    return 1;
  }
  /* sudo's secure_path: the user's PATH may lack the sbin directories. */
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  if (i >= argc) {
    if (!login && !shell) {
      fprintf(stderr, "usage: sudo [-i|-s] [command [arg ...]]\n");
      return 1;
    }
    if (login) {
      if (chdir("/root") != 0) { /* stay where we are */ }
      execl("/bin/sh", "-sh", (char *)0);
    } else {
      execl("/bin/sh", "sh", (char *)0);
    }
    perror("sudo: /bin/sh");
    return 127;
  }
  execvp(argv[i], argv + i);
  fprintf(stderr, "sudo: %s: command not found\n", argv[i]);
  return 127;
}
