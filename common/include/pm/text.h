/* pm/text.h - the text rules every daemon and tool shares: one UTF-8
 * validator, one trim, and masking by character.
 *
 * Imports, configs and requests all meet the same questions (is this UTF-8?
 * where does the value start and end? how is it shown without exposing it?);
 * each is answered once, here. */
#ifndef PM_TEXT_H
#define PM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether s[0..n) is well-formed UTF-8 without NUL: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
bool pm_utf8_valid (const char *s, size_t n);
/* The same for a NUL-terminated string. */
bool pm_utf8_valid_str (const char *s);
/* Decodes the code point at s (well-formed UTF-8 assumed, NUL ends); sets
 * *len to its byte length (0 at the end of the string). */
uint32_t pm_utf8_next (const char *s, size_t *len);
/* Number of characters (code points) in a well-formed NUL-terminated string. */
size_t pm_utf8_chars (const char *s);

/* The blanks trimmed around a value: ASCII space, tab, CR, LF, and the
 * full-width space U+3000 that Chinese spreadsheets leave behind. */
bool pm_is_blank (uint32_t cp);
/* Sets *start and *len to s without surrounding blanks (s itself is not changed). */
void pm_trim_span (const char *s, const char **start, size_t *len);
/* Trims s in place (moves the end; returns the first non-blank character). */
char *pm_trim (char *s);

/* Copies s into buf keeping `head` leading and `tail` trailing characters and
 * replacing every character between by one '*'. Counts characters, never
 * bytes, so a multi-byte character is kept or masked whole. A value too short
 * to keep head + tail + 1 is masked but its last min(tail, chars - 1)
 * characters. Returns buf (always NUL-terminated, truncated to size). */
const char *pm_mask_chars (const char *s, size_t head, size_t tail, char *buf, size_t size);

#endif
