/* test_text - the one UTF-8 check, trim and mask-by-character. */
#include "support.h"
#include "pm/log.h"
#include "pm/text.h"

#include <string.h>

static void
test_utf8 (void **state)
{
    assert_true (pm_utf8_valid_str ("王伟 E01/3/2-301"));
    assert_true (pm_utf8_valid_str (""));
    assert_false (pm_utf8_valid_str ("\xcd\xf5\xce\xb0")); /* 王伟 in GBK */
    assert_false (pm_utf8_valid_str ("\xc0\xaf"));         /* overlong '/' */
    assert_false (pm_utf8_valid_str ("\xed\xa0\x80"));     /* a surrogate */
    assert_false (pm_utf8_valid_str ("\xf4\x90\x80\x80")); /* above U+10FFFF */
    assert_false (pm_utf8_valid ("a\0b", 3));              /* NUL inside */
    assert_int_equal (pm_utf8_chars ("１３８"), 3);
}

static void
test_trim (void **state)
{
    char a[] = "  \t89.50\r\n", b[] = "\xe3\x80\x80王伟\xe3\x80\x80", c[] = "   ";
    assert_string_equal (pm_trim (a), "89.50");
    assert_string_equal (pm_trim (b), "王伟"); /* full-width spaces too */
    assert_string_equal (pm_trim (c), "");
}

static void
test_mask_keeps_whole_characters (void **state)
{
    char buf[128];
    assert_string_equal (pm_mask_chars ("13812345678", 3, 4, buf, sizeof buf), "138****5678");
    /* full-width digits: masked by character, never half a character */
    pm_mask_chars ("１３８１２３４５６７８", 3, 4, buf, sizeof buf);
    assert_string_equal (buf, "１３８****５６７８");
    assert_true (pm_utf8_valid_str (buf));
    assert_string_equal (pm_mask_id ("110101199001011234", buf, sizeof buf), "1101**********1234");
    assert_string_equal (pm_mask_phone ("12", buf, sizeof buf), "*2");
    assert_string_equal (pm_mask_id ("X", buf, sizeof buf), "*");
    /* a short buffer truncates at a character boundary */
    pm_mask_chars ("王伟王伟王伟", 2, 2, buf, 8);
    assert_true (pm_utf8_valid_str (buf));
}

int
main (void)
{
    pm_log_init ("test_text", PM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_trim),
        cmocka_unit_test (test_mask_keeps_whole_characters),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
