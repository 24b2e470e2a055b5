/*
 * kmip_ttlv.c — KMIP TTLV encoding and decoding (being written).
 */
#include "kura/banned.h"
