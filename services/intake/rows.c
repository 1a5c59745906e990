/* rows.c - what makes an import row acceptable. One place for the rules. */
#include "intake.h"
#include "pm/text.h"

#include <ctype.h>
#include <string.h>

static bool
s_blank (const char *s)
{
    if (!s)
        return true;
    while (*s && isspace ((unsigned char) *s))
        s++;
    return *s == '\0';
}

/* "89.5" / "89.50" / "120" -> hundredths of a square metre. */
static bool
s_area (const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *p = s;
    while (isdigit ((unsigned char) *p) && digits < 9) {
        whole = whole * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0)
        return false;
    if (*p == '.') {
        p++;
        while (isdigit ((unsigned char) *p) && fdigits < 2) {
            frac = frac * 10 + (*p++ - '0');
            fdigits++;
        }
        if (fdigits == 0)
            return false;
        if (fdigits == 1)
            frac *= 10;
    }
    if (*p != '\0')
        return false;
    *out = whole * 100 + frac;
    return true;
}

static bool
s_int (const char *s, int32_t *out)
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
        if (v > 1000)
            return false;
    }
    if (*p)
        return false;
    *out = (int32_t) (sign * v);
    return true;
}

static bool
s_phone (const char *s)
{
    const char *p = s;
    int digits = 0;
    if (*p == '+')
        p++;
    for (; *p; p++) {
        if (isdigit ((unsigned char) *p))
            digits++;
        else if (*p != '-' && *p != ' ')
            return false;
    }
    return digits >= 7 && digits <= 15;
}

/* A resident ID (居民身份证, 18 characters) must carry a valid ISO 7064 check
 * character; anything else 6-20 letters/digits is taken as another document
 * (passport, 港澳台 permit). */
static bool
s_id_number (const char *s, const char **why)
{
    size_t n = strlen (s);
    bool resident = n == 18;
    for (size_t i = 0; i < 17 && resident; i++)
        resident = isdigit ((unsigned char) s[i]);
    if (resident) {
        static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
        static const char check[] = "10X98765432";
        int sum = 0;
        for (int i = 0; i < 17; i++)
            sum += (s[i] - '0') * w[i];
        if (toupper ((unsigned char) s[17]) != check[sum % 11]) {
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

#define REJECT(f, v, r) \
    do { \
        err->field = (f); \
        err->value = (v); \
        err->reason = (r); \
        return false; \
    } while (0)

bool
intake_row_check (const Pm__V1__ImportRow *row, int64_t *area_cm2, int32_t *floor, intake_row_error_t *err)
{
    const struct {
        const char *name;
        const char *value;
    } required[] = {
        { "estate_id", row->estate_id }, { "estate_name", row->estate_name }, { "building", row->building },
        { "unit", row->unit },           { "floor", row->floor },             { "area_m2", row->area_m2 },
        { "owner_name", row->owner_name }, { "phone", row->phone },           { "id_number", row->id_number },
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (s_blank (required[i].value))
            REJECT (required[i].name, "", "missing: this column is required");
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!pm_utf8_valid_str (required[i].value))
            REJECT (required[i].name, "(not shown)", "not UTF-8: save the file as 'CSV UTF-8' (GBK is not accepted)");
    if (row->email && !pm_utf8_valid_str (row->email))
        REJECT ("email", "(not shown)", "not UTF-8: save the file as 'CSV UTF-8' (GBK is not accepted)");
    if (strchr (row->estate_id, '/') || strchr (row->building, '/') || strchr (row->unit, '/'))
        REJECT (strchr (row->estate_id, '/') ? "estate_id" : strchr (row->building, '/') ? "building" : "unit",
                strchr (row->estate_id, '/') ? row->estate_id : strchr (row->building, '/') ? row->building : row->unit,
                "must not contain '/' (it separates estate and unit in the unit id)");
    if (strlen (row->estate_id) + strlen (row->building) + strlen (row->unit) > 200)
        REJECT ("unit", row->unit, "estate_id, building and unit together must be under 200 characters");
    if (!s_int (row->floor, floor))
        REJECT ("floor", row->floor, "not a whole number (expected e.g. 12, or -1 for a basement)");
    if (!s_area (row->area_m2, area_cm2))
        REJECT ("area_m2", row->area_m2, "not a number (expected square metres with at most two decimals, e.g. 89.50)");
    if (*area_cm2 <= 0)
        REJECT ("area_m2", row->area_m2, "must be greater than zero");
    if (!s_phone (row->phone))
        REJECT ("phone", row->phone, "not a phone number (expected 7-15 digits, e.g. 13812345678)");
    if (!s_blank (row->email) && !s_email (row->email))
        REJECT ("email", row->email, "not an email address (expected e.g. owner@example.com)");
    const char *why = NULL;
    if (!s_id_number (row->id_number, &why))
        REJECT ("id_number", row->id_number, why);
    return true;
}
