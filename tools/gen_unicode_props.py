#!/usr/bin/env python3
# Generates src/unicode_props.c, the Unicode property tables behind \p{...}
# and \P{...} in JSON Schema patterns, from the Unicode Character Database
# files of Debian's unicode-data package.
#
# Usage: tools/gen_unicode_props.py [/usr/share/unicode] > src/unicode_props.c
import os
import re
import sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
MAXCP = 0x10FFFF


def lines(name):
    with open(os.path.join(UCD, name), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [x.strip() for x in line.split(";")]


def cprange(s):
    if ".." in s:
        a, b = s.split("..")
        return int(a, 16), int(b, 16)
    return int(s, 16), int(s, 16)


def compress(pairs):
    """(cp, value) sorted -> [(start, end, value)] merging neighbours."""
    out = []
    for a, b, v in pairs:
        if out and out[-1][2] == v and out[-1][1] + 1 == a:
            out[-1][1] = b
        else:
            out.append([a, b, v])
    return out


# --- General_Category ------------------------------------------------------
gc_of = {}
first = None
for f in lines("UnicodeData.txt"):
    cp = int(f[0], 16)
    if f[1].endswith("First>"):
        first = cp
        continue
    if f[1].endswith("Last>"):
        for c in range(first, cp + 1):
            gc_of[c] = f[2]
        continue
    gc_of[cp] = f[2]

bidi_m = set()
for f in lines("UnicodeData.txt"):
    if len(f) > 9 and f[9] == "Y" and "First>" not in f[1] and "Last>" not in f[1]:
        bidi_m.add(int(f[0], 16))

# value aliases
aliases = {}   # (prop, value alias) -> canonical short
groups = {}    # gc group short -> member shorts
gc_names = []  # (alias, short)
sc_names = []
with open(os.path.join(UCD, "PropertyValueAliases.txt"), encoding="utf-8") as fh:
    for raw in fh:
        if raw.startswith("#") or not raw.strip():
            continue
        body, _, comment = raw.partition("#")
        f = [x.strip() for x in body.split(";")]
        if f[0] == "gc":
            short = f[1]
            for a in f[1:]:
                gc_names.append((a, short))
            if comment.strip() and "|" in comment or (comment.strip() and len(short) == 1):
                members = [m.strip() for m in comment.split("|")]
                if all(re.fullmatch(r"[A-Z][a-z]", m) for m in members):
                    groups[short] = members
        elif f[0] == "sc":
            short = f[1]
            for a in f[1:]:
                sc_names.append((a, short))

base_gc = sorted({v for v in gc_of.values()} | {"Cn"})
gc_index = {g: i for i, g in enumerate(base_gc)}
gc_pairs = []
for cp in range(MAXCP + 1):
    gc_pairs.append((cp, cp, gc_index[gc_of.get(cp, "Cn")]))
gc_ranges = compress(gc_pairs)


def gc_mask(short):
    if short in gc_index:
        return 1 << gc_index[short]
    if short in groups:
        m = 0
        for x in groups[short]:
            m |= 1 << gc_index[x]
        return m
    if short == "LC":
        return gc_mask("Lu") | gc_mask("Ll") | gc_mask("Lt")
    return None


# --- Script and Script_Extensions ------------------------------------------
sc_short = sorted({s for _, s in sc_names})
sc_index = {s: i for i, s in enumerate(sc_short)}
long_to_short = {}
for a, s in sc_names:
    long_to_short[a] = s
sc_of = {}
for f in lines("Scripts.txt"):
    a, b = cprange(f[0])
    s = long_to_short[f[1]]
    for c in range(a, b + 1):
        sc_of[c] = sc_index[s]
zyyy = sc_index["Zzzz"]
sc_ranges = compress([(c, c, sc_of.get(c, zyyy)) for c in range(MAXCP + 1)])

scx_of = {}
for f in lines("ScriptExtensions.txt"):
    a, b = cprange(f[0])
    ids = tuple(sorted(sc_index[long_to_short.get(x, x)] for x in f[1].split()))
    for c in range(a, b + 1):
        scx_of[c] = ids
sets = []
set_index = {}
scx_pairs = []
for c in range(MAXCP + 1):
    ids = scx_of.get(c, (sc_of.get(c, zyyy),))
    if ids not in set_index:
        set_index[ids] = len(sets)
        sets.append(ids)
    scx_pairs.append((c, c, set_index[ids]))
scx_ranges = compress(scx_pairs)

# --- binary properties -----------------------------------------------------
ECMA_BINARY = """ASCII_Hex_Digit Alphabetic Bidi_Control Bidi_Mirrored Case_Ignorable
Cased Changes_When_Casefolded Changes_When_Casemapped Changes_When_Lowercased
Changes_When_NFKC_Casefolded Changes_When_Titlecased Changes_When_Uppercased
Dash Default_Ignorable_Code_Point Deprecated Diacritic Extender Grapheme_Base
Grapheme_Extend Hex_Digit IDS_Binary_Operator IDS_Trinary_Operator ID_Continue
ID_Start Ideographic Join_Control Logical_Order_Exception Lowercase Math
Noncharacter_Code_Point Pattern_Syntax Pattern_White_Space Quotation_Mark
Radical Regional_Indicator Sentence_Terminal Soft_Dotted Terminal_Punctuation
Unified_Ideograph Uppercase Variation_Selector White_Space XID_Continue
XID_Start""".split()
binary = {p: [] for p in ECMA_BINARY}
for name in ("PropList.txt", "DerivedCoreProperties.txt",
             "DerivedNormalizationProps.txt"):
    for f in lines(name):
        if len(f) >= 2 and f[1] in binary and len(f) == 2:
            binary[f[1]].append(cprange(f[0]))
binary["Bidi_Mirrored"] = [(c, c) for c in sorted(bidi_m)]
prop_aliases = {}
for f in lines("PropertyAliases.txt"):
    for a in f:
        prop_aliases[a] = f[1]
bin_short = {}
for f in lines("PropertyAliases.txt"):
    if f[1] in binary:
        for a in f:
            bin_short[a] = f[1]

# --- output ----------------------------------------------------------------
out = sys.stdout
out.write("""/*-------------------------------------------------------------------------
 *
 * unicode_props.c
 *		Unicode property tables for \\\\p{...} in JSON Schema patterns:
 *		General_Category, Script, Script_Extensions and the binary
 *		properties ECMA-262 names.  Generated by tools/gen_unicode_props.py
 *		from the Unicode Character Database; do not edit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "jsonschema.h"

typedef struct UcdRange
{
	uint32		lo;
	uint32		hi;
	uint16		val;
} UcdRange;

typedef struct UcdName
{
	const char *name;
	int			kind;
	uint32		val;
} UcdName;

#define UCD_GC 1
#define UCD_SC 2
#define UCD_SCX 3
#define UCD_BIN 4
#define UCD_ANY 5
#define UCD_ASCII 6
#define UCD_ASSIGNED 7

""")


def write_ranges(ranges):
    """entries four to a line"""
    for i in range(0, len(ranges), 4):
        out.write("\t" + " ".join("{0x%X, 0x%X, %d}," % tuple(r)
                                  for r in ranges[i:i + 4]) + "\n")


def table(name, ranges):
    out.write("static const UcdRange %s[] = {\n" % name)
    write_ranges(ranges)
    out.write("};\n\n")


table("ucd_gc", gc_ranges)
table("ucd_sc", sc_ranges)
table("ucd_scx", scx_ranges)
bin_list = sorted(binary)
all_bin = []
for i, p in enumerate(bin_list):
    rs = sorted(binary[p])
    merged = []
    for a, b in rs:
        if merged and merged[-1][1] + 1 >= a:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in merged:
        all_bin.append((i, a, b))
out.write("static const UcdRange ucd_bin[] = {\n")
starts = []
for i, p in enumerate(bin_list):
    starts.append(len([x for x in all_bin if x[0] < i]))
write_ranges([(a, b, i) for i, a, b in all_bin])
out.write("};\n\nstatic const int ucd_bin_start[] = {%s};\n\n" %
          ", ".join(str(s) for s in starts + [len(all_bin)]))
out.write("static const int16 ucd_scx_sets[][%d] = {\n" % (max(len(s) for s in sets) + 1))
for s in sets:
    out.write("\t{%s},\n" % ", ".join(str(x) for x in list(s) + [-1]))
out.write("};\n\n")

names = []
for a, s in gc_names:
    m = gc_mask(s)
    if m is not None:
        names.append((a, "UCD_GC", m))
for a, s in sc_names:
    names.append(("sc=" + a, "UCD_SC", sc_index[s]))
    names.append(("scx=" + a, "UCD_SCX", sc_index[s]))
for a, s in bin_short.items():
    names.append((a, "UCD_BIN", bin_list.index(s)))
names += [("Any", "UCD_ANY", 0), ("ASCII", "UCD_ASCII", 0), ("Assigned", "UCD_ASSIGNED", 0)]
seen = set()
out.write("static const UcdName ucd_names[] = {\n")
for a, k, v in names:
    if a in seen:
        continue
    seen.add(a)
    out.write('\t{"%s", %s, 0x%X},\n' % (a, k, v))
out.write("};\n\n")
out.write("""static int
ucd_find(const UcdRange *t, int n, uint32 cp)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (cp < t[mid].lo)
			hi = mid - 1;
		else if (cp > t[mid].hi)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * The property a \\\\p{name} or \\\\p{name=value} stands for, as an index
 * for ucd_has_property, or -1 when there is none.  value may be NULL.
 */
int
ucd_lookup_property(const char *name, const char *value)
{
	char		buf[128];
	int			i;

	if (value == NULL)
		snprintf(buf, sizeof(buf), "%s", name);
	else if (strcmp(name, "General_Category") == 0 || strcmp(name, "gc") == 0)
		snprintf(buf, sizeof(buf), "%s", value);
	else if (strcmp(name, "Script") == 0 || strcmp(name, "sc") == 0)
		snprintf(buf, sizeof(buf), "sc=%s", value);
	else if (strcmp(name, "Script_Extensions") == 0 || strcmp(name, "scx") == 0)
		snprintf(buf, sizeof(buf), "scx=%s", value);
	else
		return -1;
	for (i = 0; i < lengthof(ucd_names); i++)
	{
		if (strcmp(ucd_names[i].name, buf) != 0)
			continue;
		/* a bare name is a gc value or a binary property, never a script */
		if (value == NULL && (ucd_names[i].kind == UCD_SC ||
							  ucd_names[i].kind == UCD_SCX))
			return -1;
		if (value != NULL && ucd_names[i].kind == UCD_BIN)
			return -1;
		return i;
	}
	return -1;
}

bool
ucd_has_property(int prop, uint32 cp)
{
	const UcdName *p = &ucd_names[prop];
	int			i;

	switch (p->kind)
	{
		case UCD_GC:
			i = ucd_find(ucd_gc, lengthof(ucd_gc), cp);
			return i >= 0 && (p->val & (1U << ucd_gc[i].val)) != 0;
		case UCD_SC:
			i = ucd_find(ucd_sc, lengthof(ucd_sc), cp);
			return i >= 0 && ucd_sc[i].val == p->val;
		case UCD_SCX:
			{
				const int16 *s;

				i = ucd_find(ucd_scx, lengthof(ucd_scx), cp);
				if (i < 0)
					return false;
				for (s = ucd_scx_sets[ucd_scx[i].val]; *s >= 0; s++)
					if ((uint32) *s == p->val)
						return true;
				return false;
			}
		case UCD_BIN:
			{
				int			lo = ucd_bin_start[p->val];
				int			n = ucd_bin_start[p->val + 1] - lo;

				return ucd_find(ucd_bin + lo, n, cp) >= 0;
			}
		case UCD_ANY:
			return cp <= 0x10FFFF;
		case UCD_ASCII:
			return cp < 0x80;
		case UCD_ASSIGNED:
			i = ucd_find(ucd_gc, lengthof(ucd_gc), cp);
			return i >= 0 && ucd_gc[i].val != @CN@;
	}
	return false;
}
""".replace("@CN@", str(gc_index["Cn"])))
