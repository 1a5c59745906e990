#!/usr/bin/env python3
"""Writes a realistic move-in batch: the developer's sales lists (销售清单) of
E estates x U units each, as the property company receives them.

    deploy/sample/gen.py [--estates 3] [--units 500] [--seed 2026] [--out deploy/sample]
    deploy/sample/gen.py --estates 100 --units 1000 --out /tmp/big     (the batch benchmark's size)

Each estate has ceil(U / 72) buildings (two 单元 of 18 floors, two units a
floor: unit "2-1801" is 2单元1801), one owner a unit and a co-owner (spouse)
on about one unit in six, Chinese names, mainland mobiles, an e-mail for
about 60%, valid resident ID numbers (18 characters, check character), one
parking space on about one unit in three, three floor plans with their areas.

Written as a developer's export would be: `units.csv` (UTF-8 with a BOM, CRLF,
every estate but the second) and `units-E02.gbk.csv` (the second estate, GBK:
exported by Excel on a Chinese Windows; pmctl import converts it). About 1.5%
of the rows are messy the way real lists are, and intake rejects them with a
reason: a number that cannot receive an SMS (12345678901, a landline), a
missing owner name, a resident ID typed into the e-mail column, an area with
three decimals. Their units stay out of the move-in until an operator fixes
the row (pmctl queues intake: import_rejections).

Deterministic for a seed: the same arguments write the same bytes."""
import argparse
import csv
import io
import os
import random

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文辉玲鹏飞慧婷雪梅海燕晨阳宇浩然子涵欣怡思远"
         "佳琪梓萱一诺雨泽浩宇俊杰嘉怡晓东春生秋菊冬青立新永康德胜淑珍丹凤")
NAMES = ["翠湖花园", "锦绣江南", "滨江一号", "云栖雅苑", "金桂园", "和光里", "春风十里", "海棠湾", "紫荆府",
         "观澜苑"]
FIRST = "翠锦滨云金和春海紫观碧御龙凤华景盛泰安嘉"
SECOND = ("湖园", "江南", "悦府", "雅苑", "桂园", "光里", "澜庭", "棠湾", "荆府", "山居", "水岸", "熙园", "溪谷", "公馆")
PLANS = [(89.50, 2), (118.30, 3), (143.60, 2)]  # floor area m2 and how common (of 7)
REGIONS = ["110105", "110108", "310104", "310115", "440305", "440106", "330106", "320102", "510107", "420106"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"
HEADER = ["estate_id", "estate_name", "building", "unit", "floor", "area_m2", "owner_name", "phone", "email",
          "id_number", "parking_spaces", "delivery_date"]
PER_BUILDING = 72  # 2 单元 x 18 floors x 2 units
BAD_KINDS = ["phone", "landline", "no_owner", "id_in_email", "area"]


def resident_id(rng):
    region = rng.choice(REGIONS)
    birth = "%04d%02d%02d" % (rng.randint(1955, 1998), rng.randint(1, 12), rng.randint(1, 28))
    body = region + birth + "%03d" % rng.randint(0, 999)
    return body + CHECK[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def person(rng):
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))


def mobile(rng):
    return "1%s%08d" % (rng.choice(["38", "39", "50", "58", "86", "87", "88", "35", "37", "77", "99"]),
                        rng.randint(0, 99999999))


def estate_name(i):
    if i < len(NAMES):
        return NAMES[i]
    return FIRST[i % len(FIRST)] + SECOND[(i // len(FIRST)) % len(SECOND)] + ("" if i < 280 else str(i))


def estate_rows(rng, e, units):
    """The rows of one estate: (row, bad kind or None)."""
    eid = "E%02d" % (e + 1)
    name = estate_name(e)
    delivery = "2026-12-%02d" % (4 + e % 3)
    rows = []
    for i in range(units):
        building = str(i // PER_BUILDING + 1)
        k = i % PER_BUILDING
        floor = k // 4 + 1
        danyuan = (k % 4) // 2 + 1
        unit = "%d-%d%02d" % (danyuan, floor, k % 2 + 1)
        area, _ = rng.choices(PLANS, weights=[w for _, w in PLANS])[0]
        area = "%.2f" % (area + rng.choice([0, 0, 0, 0.12, -0.35]))
        parking = "1" if rng.random() < 0.33 else "0"
        owners = [person(rng)]
        if rng.random() < 1 / 6:
            owners.append(person(rng))
        for n, owner in enumerate(owners):
            email = "%s%d@example.com" % (["zhang", "li", "wang", "liu", "chen", "yang", "huang", "zhao"][rng.randrange(8)],
                                          rng.randint(100, 99999)) if rng.random() < 0.6 else ""
            row = [eid, name, building, unit, str(floor), area, owner, mobile(rng), email, resident_id(rng),
                   parking if n == 0 else "", delivery]
            bad = None
            if rng.random() < 0.015:
                bad = rng.choice(BAD_KINDS)
                if bad == "phone":
                    row[7] = "12345678901"
                elif bad == "landline":
                    row[7] = "010-6254 3821"
                elif bad == "no_owner":
                    row[6] = ""
                elif bad == "id_in_email":
                    row[8] = row[9]
                    row[9] = ""
                elif bad == "area":
                    row[5] = row[5] + "5"
            rows.append(row)
    return rows


def write(path, rows, encoding):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(rows)
    data = buf.getvalue()
    with open(path, "wb") as f:
        if encoding == "utf-8":
            f.write(b"\xef\xbb\xbf" + data.encode("utf-8"))
        else:
            f.write(data.encode(encoding))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--estates", type=int, default=3)
    ap.add_argument("--units", type=int, default=500, help="units per estate")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    utf8, gbk = [], []
    for e in range(a.estates):
        rows = estate_rows(rng, e, a.units)
        (gbk if e == 1 else utf8).extend(rows)
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "units.csv"), utf8, "utf-8")
    if gbk:
        write(os.path.join(a.out, "units-E02.gbk.csv"), gbk, "gbk")
    n = len(utf8) + len(gbk)
    print("%d estates, %d units, %d rows -> %s" % (a.estates, a.estates * a.units, n, a.out))


if __name__ == "__main__":
    main()
