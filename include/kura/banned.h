/*
 * banned.h — functions that are easy to misuse and have safer replacements
 * in kura (kura_buf, snprintf, strtoull with checks, memcpy with known
 * lengths).  Include it as the LAST include of every .c file, after all
 * system headers, so their declarations are not rewritten.
 * scripts/check-source.sh enforces this.
 */
#ifndef KURA_BANNED_H
#define KURA_BANNED_H

#define KURA_BANNED_(func) sorry_##func##_is_banned_in_kura

#undef strcpy
#define strcpy(x, y) KURA_BANNED_(strcpy)
#undef strcat
#define strcat(x, y) KURA_BANNED_(strcat)
#undef strncpy
#define strncpy(x, y, n) KURA_BANNED_(strncpy)
#undef strncat
#define strncat(x, y, n) KURA_BANNED_(strncat)
#undef sprintf
#define sprintf(...) KURA_BANNED_(sprintf)
#undef vsprintf
#define vsprintf(...) KURA_BANNED_(vsprintf)
#undef strtok
#define strtok(x, y) KURA_BANNED_(strtok)
#undef atoi
#define atoi(x) KURA_BANNED_(atoi)
#undef atol
#define atol(x) KURA_BANNED_(atol)
#undef atoll
#define atoll(x) KURA_BANNED_(atoll)
#undef gets
#define gets(x) KURA_BANNED_(gets)
#undef gmtime
#define gmtime(x) KURA_BANNED_(gmtime)
#undef localtime
#define localtime(x) KURA_BANNED_(localtime)
#undef asctime
#define asctime(x) KURA_BANNED_(asctime)
#undef ctime
#define ctime(x) KURA_BANNED_(ctime)

#endif
