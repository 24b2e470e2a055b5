#include <stdio.h>
#include "kura/err.h"
#include "kura/banned.h"
int main(void) { puts(kura_strerror(KURA_OK)); return 0; }
