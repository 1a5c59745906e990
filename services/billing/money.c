/* money.c - fen arithmetic, and amounts as people write them.
 *
 * The rounding rule: a line's amount is computed exactly in integers
 * (area in cm2 x rate in fen x months, or x days / days in the month for a
 * first partial month) and rounded half-up to the fen ONCE, at the end of
 * the line. Totals are sums of rounded lines, so the lines always add up to
 * the total, to the fen. Nothing here ever goes through a float. */
#include "billing.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define S_FEN_MAX 100000000000000LL /* 1e12 yuan: more than any invoice */

int64_t
billing_round_half_up (__int128 num, int64_t den)
{
    /* half-up for num >= 0: floor ((2 num + den) / (2 den)) */
    return (int64_t) ((2 * num + den) / ((__int128) 2 * den));
}

int64_t
billing_line_fen (int64_t qty, int64_t qty_den, int64_t rate_fen, int64_t mult, int64_t mult_den)
{
    if (qty < 0 || rate_fen < 0 || mult < 0 || qty_den <= 0 || mult_den <= 0)
        return -1;
    __int128 num = (__int128) qty * rate_fen * mult;
    __int128 den = (__int128) qty_den * mult_den;
    if (den > INT64_MAX)
        return -1;
    if (num / den > S_FEN_MAX)
        return -1;
    return billing_round_half_up (num, (int64_t) den);
}

bool
billing_yuan_parse (const char *s, bool allow_zero, int64_t *fen, const char **why)
{
    if (!s)
        s = "";
    while (isspace ((unsigned char) *s))
        s++;
    if (strncmp (s, "¥", strlen ("¥")) == 0)
        s += strlen ("¥");
    else if (strncmp (s, "￥", strlen ("￥")) == 0)
        s += strlen ("￥");
    if (!*s) {
        *why = "missing: expected yuan with at most two decimals, e.g. 3240.00";
        return false;
    }
    if (*s == '-') {
        *why = "negative: amounts are positive (a refund is its own command)";
        return false;
    }
    if (*s == '+')
        s++;
    int64_t whole = 0;
    int digits = 0, group = -1; /* digits since the last thousands comma, -1 before any comma */
    for (; *s && *s != '.'; s++) {
        if (*s == ',') {
            if (digits == 0 || (group >= 0 && group != 3) || (group < 0 && digits > 3)) {
                *why = "a comma out of place: write 3,240.00 or 3240.00";
                return false;
            }
            group = 0;
            continue;
        }
        if (!isdigit ((unsigned char) *s))
            goto not_number;
        if (whole > S_FEN_MAX / 1000) {
            *why = "too large for an amount";
            return false;
        }
        whole = whole * 10 + (*s - '0');
        digits++;
        if (group >= 0)
            group++;
    }
    if (group >= 0 && group != 3) {
        *why = "a comma out of place: write 3,240.00 or 3240.00";
        return false;
    }
    int64_t frac = 0;
    int fdigits = 0;
    if (*s == '.') {
        s++;
        for (; isdigit ((unsigned char) *s); s++) {
            if (++fdigits > 2) {
                while (isdigit ((unsigned char) *s))
                    s++;
                if (*s && !isspace ((unsigned char) *s))
                    goto not_number;
                *why = "more than two decimals: amounts are yuan to the fen, e.g. 3240.05";
                return false;
            }
            frac = frac * 10 + (*s - '0');
        }
        if (fdigits == 0 && digits == 0)
            goto not_number;
        if (fdigits == 1)
            frac *= 10;
    }
    while (isspace ((unsigned char) *s))
        s++;
    if (*s || digits + fdigits == 0)
        goto not_number;
    int64_t v = whole * 100 + frac;
    if (v > S_FEN_MAX) {
        *why = "too large for an amount";
        return false;
    }
    if (v == 0 && !allow_zero) {
        *why = "zero: an amount must be greater than 0";
        return false;
    }
    *fen = v;
    return true;
not_number:
    *why = "not an amount: expected yuan with at most two decimals, e.g. 3240.00";
    return false;
}

bool
billing_fen_parse (const char *s, int64_t *fen, const char **why)
{
    if (!s)
        s = "";
    while (isspace ((unsigned char) *s))
        s++;
    if (*s == '-') {
        *why = "negative: amounts are positive";
        return false;
    }
    int64_t v = 0;
    int digits = 0;
    for (; isdigit ((unsigned char) *s); s++, digits++) {
        if (v > S_FEN_MAX) {
            *why = "too large for an amount";
            return false;
        }
        v = v * 10 + (*s - '0');
    }
    while (isspace ((unsigned char) *s))
        s++;
    if (*s == '.') {
        *why = "not whole fen: amount_fen counts fen (分); use the amount column for yuan";
        return false;
    }
    if (*s || digits == 0) {
        *why = "not a whole number of fen, e.g. 324000";
        return false;
    }
    if (v == 0) {
        *why = "zero: an amount must be greater than 0";
        return false;
    }
    if (v > S_FEN_MAX) {
        *why = "too large for an amount";
        return false;
    }
    *fen = v;
    return true;
}

const char *
billing_yuan_fmt (int64_t fen, char *buf, size_t size)
{
    /* without printf: replies of every payment say amounts */
    uint64_t a = fen < 0 ? (uint64_t) (-(fen + 1)) + 1 : (uint64_t) fen;
    char tmp[40];
    int n = 0;
    tmp[n++] = (char) ('0' + a % 10);
    tmp[n++] = (char) ('0' + a / 10 % 10);
    tmp[n++] = '.';
    a /= 100;
    int group = 0;
    do {
        if (group == 3) {
            tmp[n++] = ',';
            group = 0;
        }
        tmp[n++] = (char) ('0' + a % 10);
        group++;
    } while ((a /= 10) != 0);
    if (fen < 0)
        tmp[n++] = '-';
    size_t o = 0;
    while (n && o + 1 < size)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return buf;
}

char *
billing_yuan (pm_arena_t *a, int64_t fen)
{
    char buf[48];
    billing_yuan_fmt (fen, buf, sizeof buf);
    size_t n = strlen (buf), sign = strlen ("¥");
    char *s = pm_arena_alloc (a, sign + n + 1);
    memcpy (s, "¥", sign);
    memcpy (s + sign, buf, n);
    return s;
}

const char *
billing_area_fmt (int64_t area_cm2, char *buf, size_t size)
{
    snprintf (buf, size, "%lld.%02lld", (long long) (area_cm2 / 100), (long long) (area_cm2 % 100));
    return buf;
}

/* Chinese capitals (大写) as the payment rules (支付结算办法) have them written:
 * 整 after 元 when there are no 角 and 分; one 零 for a run of zeros; 零 between
 * 元 and 分 when 角 is zero. */
static const char *const s_digit[10] = { "零", "壹", "贰", "叁", "肆", "伍", "陆", "柒", "捌", "玖" };
static const char *const s_pos[4] = { "", "拾", "佰", "仟" };
static const char *const s_group[4] = { "", "万", "亿", "万亿" };

static void
s_cat (char *buf, size_t size, const char *s)
{
    size_t n = strlen (buf);
    snprintf (buf + n, size > n ? size - n : 0, "%s", s);
}

const char *
billing_amount_words (int64_t fen, char *buf, size_t size)
{
    buf[0] = '\0';
    if (fen < 0) {
        s_cat (buf, size, "负");
        fen = -fen;
    }
    s_cat (buf, size, "人民币");
    int64_t yuan = fen / 100;
    int jiao = (int) (fen / 10 % 10), f = (int) (fen % 10);
    if (fen == 0) {
        s_cat (buf, size, "零元整");
        return buf;
    }
    if (yuan > 0) {
        int groups[4] = { 0 }, ng = 0;
        for (int64_t y = yuan; y > 0 && ng < 4; y /= 10000)
            groups[ng++] = (int) (y % 10000);
        bool any = false, zero = false;
        for (int g = ng - 1; g >= 0; g--) {
            int v = groups[g];
            if (v == 0) {
                zero = any;
                continue;
            }
            if (any && (zero || v < 1000))
                s_cat (buf, size, "零");
            zero = false;
            bool emitted = false, gap = false;
            for (int p = 3; p >= 0; p--) {
                int dgt = v / (p == 3 ? 1000 : p == 2 ? 100 : p == 1 ? 10 : 1) % 10;
                if (dgt == 0) {
                    gap = emitted;
                    continue;
                }
                if (gap)
                    s_cat (buf, size, "零");
                gap = false;
                s_cat (buf, size, s_digit[dgt]);
                s_cat (buf, size, s_pos[p]);
                emitted = true;
            }
            s_cat (buf, size, s_group[g]);
            zero = v % 10 == 0;
            any = true;
        }
        s_cat (buf, size, "元");
    }
    if (jiao == 0 && f == 0) {
        s_cat (buf, size, "整");
        return buf;
    }
    if (jiao > 0) {
        s_cat (buf, size, s_digit[jiao]);
        s_cat (buf, size, "角");
    }
    else if (yuan > 0)
        s_cat (buf, size, "零");
    if (f > 0) {
        s_cat (buf, size, s_digit[f]);
        s_cat (buf, size, "分");
    }
    return buf;
}
