#!/usr/bin/env python3
"""Writes a move-in import CSV: estates x buildings x floors x units, one owner
each (every 7th unit has a co-owner row), valid resident ID numbers.

usage: gen_units.py OUT.csv [--units N] [--estates E] [--bad] [--seed S]
--bad appends rows an operator must fix: a non-numeric area and a missing owner.
"""
import argparse
import csv
import random

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
ESTATES = ["翠湖花园", "锦绣江南", "滨江一号", "云栖雅苑", "金桂园", "和光里"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def resident_id(rng):
    region = rng.choice(["110105", "310104", "440305", "330106", "510107"])
    birth = "%04d%02d%02d" % (rng.randint(1950, 2000), rng.randint(1, 12), rng.randint(1, 28))
    body = region + birth + "%03d" % rng.randint(0, 999)
    return body + CHECK[sum(int(c) * w for c, w in zip(body, WEIGHTS)) % 11]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--units", type=int, default=240)
    ap.add_argument("--estates", type=int, default=2)
    ap.add_argument("--bad", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    per_estate = (a.units + a.estates - 1) // a.estates
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["estate_id", "estate_name", "building", "unit", "floor", "area_m2",
                    "owner_name", "phone", "email", "id_number"])
        n = 0
        for e in range(a.estates):
            eid = "E%02d" % (e + 1)
            ename = ESTATES[e % len(ESTATES)]
            for i in range(per_estate):
                if n == a.units:
                    break
                building = str(i // 200 + 1)
                floor = (i % 200) // 4 + 1
                unit = "%d%02d" % (floor, i % 4 + 1)
                area = "%d.%02d" % (rng.randint(60, 180), rng.randint(0, 99))
                name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
                phone = "1%d%09d" % (rng.choice([3, 5, 7, 8, 9]), rng.randint(0, 999999999))
                email = "owner%d@example.com" % n if rng.random() < 0.7 else ""
                w.writerow([eid, ename, building, unit, floor, area, name, phone, email, resident_id(rng)])
                if n % 7 == 3:  # a co-owner (e.g. spouse) on the same unit
                    name2 = rng.choice(SURNAMES) + rng.choice(GIVEN)
                    phone2 = "13%09d" % rng.randint(0, 999999999)
                    w.writerow([eid, ename, building, unit, floor, area, name2, phone2, "", resident_id(rng)])
                n += 1
        if a.bad:
            w.writerow(["E01", ESTATES[0], "9", "901", "9", "八十九", "赵六", "13900000001", "", resident_id(rng)])
            w.writerow(["E01", ESTATES[0], "9", "902", "9", "92.00", "", "13900000002", "", resident_id(rng)])


if __name__ == "__main__":
    main()
