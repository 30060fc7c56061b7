/* Boson test guest: a plain core WASI preview1 command module (exports `_start`), not a
 * component. Prints one line on stdout and exits 0. */
#include <stdio.h>

int main(void) {
    printf("Hello from a wasip1 command!\n");
    return 0;
}
