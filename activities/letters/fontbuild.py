"""Build the letter fonts: Latin subsets of DejaVu Sans committed under templates/letters/fonts.

Why: WeasyPrint subsets every embedded font on every render, and with the full system
DejaVu Sans (750 kB, large GSUB/GPOS tables) that subsetting is most of the cost of a
letter (~150 ms of ~200 ms). Letters are French: a Latin subset (Latin-1, Latin
Extended-A, punctuation, €) of ~50 kB is embedded whole (``full_fonts=True``), which
removes per-letter subsetting while every glyph used is still embedded (PDF/A).
Characters outside the subset (a Cyrillic name, say) fall back to the system fonts.

The DejaVu licence (Bitstream Vera + public domain changes) allows modified copies whose
names contain neither "Bitstream" nor "Vera"; the family is renamed "Lettre Sans".

Run: ``python -m activities.letters.fontbuild [SOURCE_DIR]`` (default /usr/share/fonts/truetype/dejavu).
"""

from __future__ import annotations

import sys
from pathlib import Path

FONTS_DIR = Path(__file__).resolve().parents[2] / "templates" / "letters" / "fonts"
FAMILY = "Lettre Sans"
# Latin-1 + Latin Extended-A covers French and most European names. Going wider (Latin
# Extended-B/Additional: 700 glyphs) costs ~25 ms more per letter, because WeasyPrint
# reads every glyph of a font it embeds whole; a letter with a character outside the
# subset falls back to the system fonts and is written with subsetting instead.
UNICODES = (
    "U+0020-007E,U+00A0-017F,U+0192,U+02C6-02C7,U+02D8-02DD,U+2002-2027,U+202F,"
    "U+2030-203A,U+2044,U+205F,U+20AC,U+2116,U+2122,U+2190-2193,U+2212,U+2260,U+2264-2265,"
    "U+25A0-25A1,U+25CF,U+2610,U+2611,U+2713,U+2714"
)
STYLES = {"Regular": "DejaVuSans.ttf", "Bold": "DejaVuSans-Bold.ttf"}


def build(source_dir: Path = Path("/usr/share/fonts/truetype/dejavu")) -> list[Path]:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    FONTS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for style, filename in STYLES.items():
        options = subset.Options()
        # Kerning kept for layout. No ligatures: a ligature glyph has no Unicode of its own,
        # so "ff"/"fi" would come back wrong from text extraction (archives are searched).
        # No TrueType hinting: PDF viewers do not need it and it is a third of the file.
        options.layout_features = ["kern"]
        options.hinting = False
        options.name_IDs = ["*"]
        options.drop_tables += ["FFTM"]
        font = TTFont(source_dir / filename, recalcTimestamp=False)  # same input, same bytes
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=subset.parse_unicodes(UNICODES))
        subsetter.subset(font)
        names = font["name"]
        full = FAMILY if style == "Regular" else f"{FAMILY} {style}"
        for record in list(names.names):
            if record.nameID in (1, 16):
                names.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
            elif record.nameID in (4, 18):
                names.setName(full, record.nameID, record.platformID, record.platEncID, record.langID)
            elif record.nameID == 6:
                ps = f"LettreSans-{style}"
                names.setName(ps, 6, record.platformID, record.platEncID, record.langID)
            elif record.nameID == 3:
                names.setName(f"{full} (DejaVu Sans Latin subset)", 3, record.platformID, record.platEncID, record.langID)
        out = FONTS_DIR / f"LettreSans-{style}.ttf"
        font.save(out)
        written.append(out)
    return written


if __name__ == "__main__":
    for path in build(*(Path(a) for a in sys.argv[1:2])):
        print(path, path.stat().st_size)
