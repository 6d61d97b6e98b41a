#!/usr/bin/env bash
# Rebuild the font embedded in kincode-common for the offline card:
#
#   scripts/build-font-subset.sh          # writes common/assets/fonts/KincodeSansSC-Subset-Regular.otf
#
# Source: Noto Sans CJK SC Regular, face 2 of NotoSansCJK-Regular.ttc from Debian bookworm's
# fonts-noto-cjk (1:20220127+repack1-1), checked against its sha256 below. Subset with fontTools'
# pyftsubset (Debian's fonttools) to:
#   - the 3,755 level-1 hanzi of GB 2312 (rows 0xB0-0xD7), generated here with Python's gb2312
#     codec. DESIGN.md asks for the 3,500 level-1 characters of the 通用规范汉字表 (2013); that
#     list is not available offline on these machines, and GB 2312 level 1 covers nearly all of it
#     (a name character outside the subset is drawn as '*' by the card anyway);
#   - printable ASCII;
#   - every character of the pictures' fixed text (kept in step by unit tests in
#     common/src/imaging/{card,kin_code,draw}.rs that check the font has a glyph for each).
# The family is renamed (SIL OFL 1.1 asks modified versions not to present themselves under the
# original name). Hinting and the OpenType layout tables are dropped: ab_glyph uses neither.
#
# Reproducible: the same source and fontTools version give a byte-identical file (the head
# table's timestamps are kept from the source, not set to now).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
out_dir="$repo_root/common/assets/fonts"
out="$out_dir/KincodeSansSC-Subset-Regular.otf"

source_ttc=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
source_sha256=b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a
sc_face=2 # 0 JP, 1 KR, 2 SC, 3 TC, 4 HK, then the Mono faces

# The fixed text of the card (common/src/imaging/card.rs) and of the phone's kin code
# (kin_code.rs), the clock's name (draw.rs), the colour labels (domain/colour.rs), the
# relationship labels (domain/relationship.rs), and the '*' drawn for a missing name character.
# Most are in GB 2312 level 1 already; '·', '“' and '”' are not.
card_text='亲属码·离线码 绿码 黄码 红码 姓名 关系 生成时间 有效期至 亲属码现阶段不适用于“一场两站” 北京时间
子女 父母 祖父母/外祖父母 孙子女/外孙子女 配偶 兄弟姐妹 其他亲属 *'

"$script_dir/ensure-apt.sh" fonts-noto-cjk fonttools

actual_sha256="$(sha256sum "$source_ttc" | cut -d' ' -f1)"
if [[ "$actual_sha256" != "$source_sha256" ]]; then
    echo "build-font-subset: $source_ttc has sha256 $actual_sha256, expected $source_sha256" >&2
    echo "build-font-subset: a different fonts-noto-cjk version; check the face index and update the pin" >&2
    exit 1
fi

# Debian's fonttools lives in the system interpreter, not in whatever python3 is first on PATH.
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

CARD_TEXT="$card_text" "$python" - "$work/chars.txt" <<'EOF'
import os, sys
chars = set()
for row in range(0xB0, 0xD8):
    for cell in range(0xA1, 0xFF):
        try:
            chars.add(bytes([row, cell]).decode("gb2312"))
        except UnicodeDecodeError:  # row 0xD7 ends at 0xF9
            pass
assert len(chars) == 3755, len(chars)
chars.update(chr(c) for c in range(0x20, 0x7F))
chars.update(c for c in os.environ["CARD_TEXT"] if not c.isspace())
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("".join(sorted(chars)))
EOF

pyftsubset "$source_ttc" \
    --font-number="$sc_face" \
    --text-file="$work/chars.txt" \
    --layout-features= \
    --drop-tables+=GSUB,GPOS,GDEF,BASE,VORG,vhea,vmtx \
    --no-hinting \
    --name-IDs='*' \
    --output-file="$work/subset.otf"

"$python" - "$work/subset.otf" "$out" <<'EOF'
import sys
from fontTools.ttLib import TTFont

family = "KincodeSans SC Subset"
postscript = "KincodeSansSC-Subset-Regular"
font = TTFont(sys.argv[1], recalcTimestamp=False)
name = font["name"]
for record in list(name.names):
    if record.nameID in (1, 3, 4, 6, 16, 17, 21, 22):
        name.removeNames(nameID=record.nameID)
name.setName(family, 1, 3, 1, 0x409)
name.setName(f"{postscript};subset of NotoSansCJKsc-Regular 2.004", 3, 3, 1, 0x409)
name.setName(f"{family} Regular", 4, 3, 1, 0x409)
name.setName(postscript, 6, 3, 1, 0x409)
name.setName(
    "Subset of Noto Sans CJK SC Regular for kincode's offline card: "
    "GB 2312 level-1 hanzi, ASCII and the card's labels.",
    10, 3, 1, 0x409,
)
# The CFF table carries its own copy of the PostScript name.
cff = font["CFF "].cff
cff.fontNames = [postscript]
font.save(sys.argv[2])
EOF

echo "build-font-subset: wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1))" >&2
