/*
 * audit.c — placeholder until the audit log lands (include/kura/audit.h).
 */
#include "kura/audit.h"
#include "kura/banned.h"
