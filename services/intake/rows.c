/* rows.c - what makes an import row acceptable, and how values are made
 * canonical. One place for the rules.
 *
 * Sales lists come from spreadsheets typed by people: phones with full-width
 * digits (１３８…), spaces, dashes or a +86 prefix; ID numbers with a lower
 * case x; dates as 2026/12/5. Each is made canonical first and then judged,
 * so a value an operator reads as valid is accepted, and a rejection says
 * what is really wrong with it.
 *
 * A resident ID number (18 characters with a valid check character) is only
 * ever accepted in id_number: found in any other field it rejects the row,
 * and the value is shown masked, never stored or echoed in clear. */
#include "intake.h"
#include "pm/log.h"
#include "pm/text.h"

#include <ctype.h>
#include <string.h>

/* The ASCII character a full-width form stands for (U+FF01-FF5E), a blank
 * for U+3000, '-' for the dashes people type (U+2010-2015, U+2212), or 0. */
static char
s_ascii_of (uint32_t cp)
{
    if (cp < 0x80)
        return (char) cp;
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return (char) (cp - 0xFF01 + 0x21);
    if (cp == 0x3000)
        return ' ';
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212)
        return '-';
    return 0;
}

/* s with full-width forms made ASCII (arena); other characters kept as they are. */
static char *
s_narrow (pm_arena_t *a, const char *s)
{
    const char *q = s;
    while (*q && (unsigned char) *q < 0x80)
        q++;
    if (!*q)
        return (char *) s; /* ASCII: nothing to narrow (the common case) */
    size_t n = strlen (s), o = 0, len;
    char *out = pm_arena_alloc (a, n + 1);
    const char *p = s;
    uint32_t cp;
    while ((cp = pm_utf8_next (p, &len), len)) {
        char c = s_ascii_of (cp);
        if (c && cp >= 0x80)
            out[o++] = c;
        else {
            memcpy (out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = '\0';
    return out;
}

bool
intake_resident_id_valid (const char *s)
{
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    static const char check[] = "10X98765432";
    if (strlen (s) != 18)
        return false;
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (!isdigit ((unsigned char) s[i]))
            return false;
        sum += (s[i] - '0') * w[i];
    }
    return toupper ((unsigned char) s[17]) == check[sum % 11];
}

bool
intake_has_resident_id (const char *s)
{
    if (!s || strlen (s) < 18)
        return false; /* too short to hold one (most fields) */
    char buf[19];
    size_t run = 0;
    const char *p = s;
    for (;;) {
        size_t len;
        uint32_t cp = pm_utf8_next (p, &len);
        char c = len ? s_ascii_of (cp) : 0;
        bool digit = c >= '0' && c <= '9';
        bool x = (c == 'X' || c == 'x') && run == 17;
        if (digit || x) {
            if (run < sizeof buf - 1)
                buf[run] = c;
            run++;
            if (x) { /* an X ends a run */
                buf[18] = '\0';
                if (intake_resident_id_valid (buf))
                    return true;
                run = 0;
            }
        }
        else {
            if (run == 18) {
                buf[18] = '\0';
                if (intake_resident_id_valid (buf))
                    return true;
            }
            run = 0;
        }
        if (!len)
            return false;
        p += len;
    }
}

char *
intake_id_normalise (pm_arena_t *a, const char *s)
{
    char *n = pm_arena_strdup (a, s_narrow (a, s)), *o = n; /* a copy: s is not changed */
    for (const char *p = n; *p; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        *o++ = (char) toupper ((unsigned char) *p);
    }
    *o = '\0';
    return n;
}

const char *
intake_phone_normalise (pm_arena_t *a, const char *s, const char **why)
{
    const char *n = s_narrow (a, s);
    size_t len = strlen (n);
    char *d = pm_arena_alloc (a, len + 2);
    size_t o = 0;
    bool plus = false;
    for (const char *p = n; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (isdigit (c))
            d[o++] = (char) c;
        else if (c == '+' && o == 0 && !plus)
            plus = true;
        else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t')
            continue;
        else {
            *why = "not a phone number: expected digits, with spaces, dashes or a leading + at most";
            return NULL;
        }
    }
    d[o] = '\0';
    const char *num = d;
    /* +86 / 0086 / 86 before a mainland mobile number */
    if (plus && strncmp (num, "86", 2) == 0)
        num += 2, plus = false;
    else if (!plus && strncmp (num, "0086", 4) == 0 && strlen (num) == 15)
        num += 4;
    else if (!plus && strncmp (num, "86", 2) == 0 && strlen (num) == 13 && num[2] == '1')
        num += 2;
    size_t nd = strlen (num);
    if (plus) {
        if (nd < 8 || nd > 15 || num[0] == '0') {
            *why = "not an international number: expected + then the country code and 7 to 14 more digits "
                   "(E.164, e.g. +85291234567)";
            return NULL;
        }
        return pm_arena_printf (a, "+%s", num);
    }
    if (nd == 11 && num[0] == '1') {
        if (num[1] < '3') {
            *why = "not a mainland mobile number: after the 1 comes 3 to 9 (e.g. 13812345678); it cannot "
                   "receive SMS";
            return NULL;
        }
        return num;
    }
    if (nd > 0 && num[0] == '0') {
        *why = "a landline (area code 0...) cannot receive SMS: give the owner's mobile number";
        return NULL;
    }
    if (nd >= 7 && nd <= 8) {
        *why = "a local landline number cannot receive SMS: give the owner's mobile number";
        return NULL;
    }
    *why = "expected a mainland mobile number (11 digits, 1 then 3-9, e.g. 13812345678) or an international "
           "number as +<country code><number>";
    return NULL;
}

/* "89.5" / "89.50" / "120" -> hundredths of a square metre; *why when not. */
static bool
s_area (const char *s, int64_t *out, const char **why)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    while (isdigit ((unsigned char) *p)) {
        if (++digits > 7) {
            *why = "too large: a unit's area is under 10,000,000 square metres";
            return false;
        }
        whole = whole * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        while (isdigit ((unsigned char) *p)) {
            if (++fdigits > 2) {
                *why = "too many decimals: at most two (e.g. 89.50)";
                return false;
            }
            frac = frac * 10 + (*p++ - '0');
        }
        if (fdigits == 1)
            frac *= 10;
    }
    if ((digits == 0 && fdigits == 0) || *p != '\0') {
        *why = "not a number (expected square metres with at most two decimals, e.g. 89.50)";
        return false;
    }
    *out = whole * 100 + frac;
    if (neg && *out > 0) {
        *why = "negative: an area must be greater than zero (e.g. 89.50)";
        return false;
    }
    if (*out <= 0) {
        *why = "zero: an area must be greater than zero (e.g. 89.50)";
        return false;
    }
    return true;
}

static bool
s_int (const char *s, int32_t lo, int32_t hi, int32_t *out)
{
    const char *p = s;
    int sign = 1;
    int64_t v = 0;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit ((unsigned char) *p))
        return false;
    while (isdigit ((unsigned char) *p)) {
        v = v * 10 + (*p++ - '0');
        if (v > 100000)
            return false;
    }
    if (*p || sign * v < lo || sign * v > hi)
        return false;
    *out = (int32_t) (sign * v);
    return true;
}

/* A resident ID (居民身份证, 18 characters) must carry a valid ISO 7064 check
 * character; anything else of 6-20 letters/digits is taken as another
 * document (passport, 港澳台 permit). */
static bool
s_id_number (const char *s, const char **why)
{
    size_t n = strlen (s);
    bool resident = n == 18;
    for (size_t i = 0; i < 17 && resident; i++)
        resident = isdigit ((unsigned char) s[i]);
    if (resident) {
        if (!intake_resident_id_valid (s)) {
            *why = "resident ID check character does not match (mistyped digit?)";
            return false;
        }
        return true;
    }
    if (n < 6 || n > 20) {
        *why = "expected an 18-character resident ID or a 6-20 character document number";
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum ((unsigned char) s[i])) {
            *why = "expected letters and digits only";
            return false;
        }
    return true;
}

static bool
s_email (const char *s)
{
    const char *at = strchr (s, '@');
    return at && at != s && strchr (at + 1, '.') && !strchr (at + 1, '@') && !strchr (s, ' ');
}

/* Whether a part of the unit id holds a control character. */
static bool
s_has_control (const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

#define REJECT(f, v, r) \
    do { \
        err->field = (f); \
        err->value = (v); \
        err->reason = (r); \
        return false; \
    } while (0)

bool
intake_row_check (pm_arena_t *a, const Pm__V1__ImportRow *row, intake_row_values_t *v, intake_row_error_t *err)
{
    const struct {
        const char *name;
        const char *value;
        bool required;
    } fields[] = {
        { "estate_id", row->estate_id, true },   { "estate_name", row->estate_name, true },
        { "building", row->building, true },     { "unit", row->unit, true },
        { "floor", row->floor, true },           { "area_m2", row->area_m2, true },
        { "owner_name", row->owner_name, true }, { "phone", row->phone, true },
        { "email", row->email, false },          { "id_number", row->id_number, true },
        { "delivery_date", row->delivery_date, false }, { "parking_spaces", row->parking_spaces, false },
    };
    const size_t nf = sizeof fields / sizeof fields[0];
    char buf[128];
    for (size_t i = 0; i < nf; i++)
        if (fields[i].value && !pm_utf8_valid_str (fields[i].value))
            REJECT (fields[i].name, "(not shown)",
                    "not UTF-8, though the rest of the file is: retype this value, or save the file as 'CSV UTF-8'");
    /* a resident ID number anywhere but id_number: never stored or shown in clear */
    for (size_t i = 0; i < nf; i++)
        if (strcmp (fields[i].name, "id_number") != 0 && intake_has_resident_id (fields[i].value))
            REJECT (fields[i].name, pm_arena_strdup (a, pm_mask_chars (fields[i].value, 2, 2, buf, sizeof buf)),
                    "holds a resident ID number: it belongs in id_number only; the value is not stored");
    for (size_t i = 0; i < nf; i++)
        if (fields[i].required && (!fields[i].value || !*fields[i].value))
            REJECT (fields[i].name, "", "missing: this column is required");
    const char *parts[3][2] = { { "estate_id", row->estate_id }, { "building", row->building }, { "unit", row->unit } };
    for (int i = 0; i < 3; i++) {
        if (strchr (parts[i][1], '/'))
            REJECT (parts[i][0], parts[i][1],
                    "must not contain '/': it separates estate, building and unit in the unit id (E01/3/2-301); "
                    "write 2-301 or 2单元301");
        if (s_has_control (parts[i][1]))
            REJECT (parts[i][0], "(not shown)", "holds a control character (a tab or line break inside the value?)");
    }
    if (strlen (row->estate_id) + strlen (row->building) + strlen (row->unit) > 200)
        REJECT ("unit", row->unit, "estate_id, building and unit together must be under 200 bytes");
    const char *why = NULL;
    if (!s_int (s_narrow (a, row->floor), -50, 999, &v->floor))
        REJECT ("floor", row->floor, "not a floor number (expected a whole number from -50 to 999, e.g. 12, or -1 "
                                     "for a basement)");
    if (!s_area (s_narrow (a, row->area_m2), &v->area_cm2, &why))
        REJECT ("area_m2", row->area_m2, why);
    v->phone = intake_phone_normalise (a, row->phone, &why);
    if (!v->phone)
        REJECT ("phone", pm_arena_strdup (a, pm_mask_phone (row->phone, buf, sizeof buf)), why);
    if (row->email && *row->email && !s_email (row->email))
        REJECT ("email", row->email, "not an email address (expected e.g. owner@example.com)");
    v->id_number = intake_id_normalise (a, row->id_number);
    if (!s_id_number (v->id_number, &why))
        REJECT ("id_number", pm_arena_strdup (a, pm_mask_id (v->id_number, buf, sizeof buf)), why);
    v->delivery_date = "";
    if (row->delivery_date && *row->delivery_date) {
        v->delivery_date = intake_date_normalise (a, s_narrow (a, row->delivery_date));
        if (!v->delivery_date)
            REJECT ("delivery_date", row->delivery_date, "not a date (expected YYYY-MM-DD, e.g. 2026-12-05)");
    }
    v->parking_spaces = 0;
    if (row->parking_spaces && *row->parking_spaces) {
        int32_t n;
        if (!s_int (s_narrow (a, row->parking_spaces), 0, 99, &n))
            REJECT ("parking_spaces", row->parking_spaces,
                    "not a number of parking spaces (expected a whole number from 0 to 99)");
        v->parking_spaces = (uint32_t) n;
    }
    return true;
}
