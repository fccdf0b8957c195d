#!/usr/bin/env python3
"""Writes core/tokenizer/unicode_data_gen.cpp: the Unicode data the tokenizer's character classes are built from.

Reads three files of one Unicode Character Database release from a folder:
  UnicodeData.txt  General_Category of every assigned code point (ranges given as <..., First> / <..., Last> pairs)
  Scripts.txt      Script=Han
  PropList.txt     White_Space
and writes the sorted ranges of assigned code points that share a General_Category and the same Han / White_Space
bits. Code points in no range are unassigned (General_Category Cn) and have neither property.

Run by hand when the reference tokenizer moves to another Unicode version (see core/tokenizer/README.md):
  python3 tools/unicode/gen_unicode_data.py --ucd <folder with the 16.0.0 files> \
      --out core/tokenizer/unicode_data_gen.cpp
The build never runs this script and never reads the UCD files.
"""

import argparse
import hashlib
import os
import re
import sys

# Must list the enumerators of GeneralCategory in core/tokenizer/unicode_data.h, in the same order.
GENERAL_CATEGORIES = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
                      "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]
PROP_HAN = 1           # kUcdHan in unicode_data.h
PROP_WHITE_SPACE = 2   # kUcdWhiteSpace in unicode_data.h
NUM_CODE_POINTS = 0x110000


def fail(message):
    sys.exit("gen_unicode_data.py: " + message)


def read_lines(path):
    if not os.path.isfile(path):
        fail(f"{path} does not exist; --ucd must name a folder holding UnicodeData.txt, Scripts.txt and PropList.txt")
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def file_version(lines, path):
    """The version in a UCD file's first line, e.g. '# Scripts-16.0.0.txt' -> '16.0.0'."""
    m = re.match(r"#\s*\w+-(\d+\.\d+\.\d+)\.txt", lines[0] if lines else "")
    if not m:
        fail(f"{path} does not start with a '# Name-X.Y.Z.txt' line, so its Unicode version is unknown")
    return m.group(1)


def parse_code_point_range(text, path):
    first, _, last = text.strip().partition("..")
    a = int(first, 16)
    b = int(last, 16) if last else a
    if not (0 <= a <= b < NUM_CODE_POINTS):
        fail(f"{path} has a bad code point range {text!r}")
    return a, b


def read_general_categories(path):
    """General_Category of every code point; 'Cn' where UnicodeData.txt lists nothing."""
    gc = ["Cn"] * NUM_CODE_POINTS
    range_first = None
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split(";")
        if len(fields) != 15 or fields[2] not in GENERAL_CATEGORIES:
            fail(f"{path} line {n} is not a 15-field UnicodeData record with a known General_Category: {line!r}")
        cp = int(fields[0], 16)
        name, category = fields[1], fields[2]
        if name.endswith(", First>"):
            range_first = cp
            continue
        if name.endswith(", Last>"):
            if range_first is None:
                fail(f"{path} line {n} closes a range that no '<..., First>' line opened")
            for c in range(range_first, cp + 1):
                gc[c] = category
            range_first = None
            continue
        gc[cp] = category
    if range_first is not None:
        fail(f"{path} ends inside a '<..., First>' range")
    return gc


def read_property(path, value):
    """Code points whose value in a 'range ; value # comment' file (Scripts.txt, PropList.txt) is `value`."""
    member = bytearray(NUM_CODE_POINTS)
    lines = read_lines(path)
    found = False
    for line in lines:
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        cps, _, v = data.partition(";")
        if v.strip() != value:
            continue
        a, b = parse_code_point_range(cps, path)
        member[a:b + 1] = b"\x01" * (b - a + 1)
        found = True
    if not found:
        fail(f"{path} lists no code point with value {value}")
    return member, file_version(lines, path)


def ranges(gc, han, white_space):
    """[(first, last, gc, props)] over assigned code points, merging neighbours with equal (gc, props)."""
    out = []
    for cp in range(NUM_CODE_POINTS):
        props = (PROP_HAN if han[cp] else 0) | (PROP_WHITE_SPACE if white_space[cp] else 0)
        if gc[cp] == "Cn":
            if props:
                fail(f"U+{cp:04X} is unassigned but has properties {props}")
            continue
        if out and out[-1][1] == cp - 1 and out[-1][2] == gc[cp] and out[-1][3] == props:
            out[-1][1] = cp
        else:
            out.append([cp, cp, gc[cp], props])
    return out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def render(version, table, command, digests):
    props_name = {0: "0", PROP_HAN: "H", PROP_WHITE_SPACE: "W", PROP_HAN | PROP_WHITE_SPACE: "H | W"}
    lines = [
        "// GENERATED FILE, DO NOT EDIT. Unicode Character Database " + version + " (UnicodeData.txt, Scripts.txt,",
        "// PropList.txt), written by:",
        "//   " + command,
    ] + [f"// {name} sha256 {digest}" for name, digest in digests] + [
        "// Data: Copyright (c) Unicode, Inc., under the Unicode License v3 (https://www.unicode.org/license.txt).",
        "// Sorted, disjoint ranges of assigned code points: {first, last, General_Category, H = Script=Han |",
        "// W = White_Space}. A code point in no range is unassigned (Cn) and has neither property.",
        '#include "core/tokenizer/unicode_data.h"',
        "",
        "namespace halo::tok {",
        "namespace {",
        "",
        "using enum GeneralCategory;",
        "constexpr uint8_t H = kUcdHan;",
        "constexpr uint8_t W = kUcdWhiteSpace;",
        "",
        "constexpr UcdRange kRanges[] = {",
    ]
    row = ""
    for first, last, category, props in table:
        cell = f"{{0x{first:X}, 0x{last:X}, {category}, {props_name[props]}}}, "
        if len(row) + len(cell) > 116:
            lines.append("    " + row.rstrip())
            row = ""
        row += cell
    if row:
        lines.append("    " + row.rstrip())
    lines += [
        "};",
        "",
        "}  // namespace",
        "",
        f'const char kUcdVersion[] = "{version}";',
        "",
        "std::span<const UcdRange> ucd_ranges() { return kRanges; }",
        "",
        "}  // namespace halo::tok",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ucd", required=True, help="folder holding UnicodeData.txt, Scripts.txt, PropList.txt")
    parser.add_argument("--out", required=True, help="the C++ file to write")
    args = parser.parse_args()

    gc = read_general_categories(os.path.join(args.ucd, "UnicodeData.txt"))
    han, scripts_version = read_property(os.path.join(args.ucd, "Scripts.txt"), "Han")
    white_space, proplist_version = read_property(os.path.join(args.ucd, "PropList.txt"), "White_Space")
    if scripts_version != proplist_version:
        fail(f"Scripts.txt is version {scripts_version} but PropList.txt is {proplist_version}; use one release")

    table = ranges(gc, han, white_space)
    command = ("python3 tools/unicode/gen_unicode_data.py --ucd <UCD " + scripts_version + " folder> --out " +
               "core/tokenizer/unicode_data_gen.cpp")
    digests = [(name, sha256(os.path.join(args.ucd, name)))
               for name in ("UnicodeData.txt", "Scripts.txt", "PropList.txt")]
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(render(scripts_version, table, command, digests))
    print(f"wrote {args.out}: Unicode {scripts_version}, {len(table)} ranges, "
          f"{sum(g != 'Cn' for g in gc)} assigned code points")


if __name__ == "__main__":
    main()
