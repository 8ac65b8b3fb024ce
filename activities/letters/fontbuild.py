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
# Two families. "Lettre Sans": Latin-1 + Latin Extended-A, French and most European names,
# embedded in every letter. "Lettre Sans Ext": the rest of the Latin script (Extended-B,
# Extended Additional: Vietnamese…), Greek and Cyrillic, used (and embedded) only by a
# letter that needs it. One bigger font would cost every letter ~25 ms, because WeasyPrint
# reads every glyph of a font it embeds whole; a character in neither family falls back
# to the system fonts and that letter is written with subsetting instead.
FAMILIES = {
    "Lettre Sans": (
        "LettreSans",
        "U+0020-007E,U+00A0-017F,U+0192,U+02C6-02C7,U+02D8-02DD,U+2002-2027,U+202F,"
        "U+2030-203A,U+2044,U+205F,U+20AC,U+2116,U+2122,U+2190-2193,U+2212,U+2260,"
        "U+2264-2265,U+25A0-25A1,U+25CF,U+2610,U+2611,U+2713,U+2714",
    ),
    "Lettre Sans Ext": (
        "LettreSansExt",
        "U+0020,U+00A0,U+0180-024F,U+0250-02AF,U+02B0-02FF,U+0300-036F,U+0370-03FF,"
        "U+0400-04FF,U+1E00-1EFF",
    ),
}
STYLES = {"Regular": "DejaVuSans.ttf", "Bold": "DejaVuSans-Bold.ttf"}


def build(source_dir: Path = Path("/usr/share/fonts/truetype/dejavu")) -> list[Path]:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    FONTS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for family, (stem, unicodes) in FAMILIES.items():
        for style, filename in STYLES.items():
            options = subset.Options()
            # Kerning kept for layout. No ligatures: a ligature glyph has no Unicode of its
            # own, so "ff"/"fi" would come back wrong from text extraction (archives are
            # searched). No TrueType hinting: viewers do not need it; a third of the file.
            options.layout_features = ["kern"]
            options.hinting = False
            options.name_IDs = ["*"]
            options.drop_tables += ["FFTM"]
            font = TTFont(source_dir / filename, recalcTimestamp=False)  # same input, same bytes
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=subset.parse_unicodes(unicodes))
            subsetter.subset(font)
            _rename(font, family, stem, style)
            out = FONTS_DIR / f"{stem}-{style}.ttf"
            font.save(out)
            written.append(out)
    return written


def _rename(font, family: str, stem: str, style: str) -> None:
    names = font["name"]
    full = family if style == "Regular" else f"{family} {style}"
    for record in list(names.names):
        args = (record.platformID, record.platEncID, record.langID)
        if record.nameID in (1, 16):
            names.setName(family, record.nameID, *args)
        elif record.nameID in (4, 18):
            names.setName(full, record.nameID, *args)
        elif record.nameID == 6:
            names.setName(f"{stem}-{style}", 6, *args)
        elif record.nameID == 3:
            names.setName(f"{full} (DejaVu Sans subset)", 3, *args)


if __name__ == "__main__":
    for path in build(*(Path(a) for a in sys.argv[1:2])):
        print(path, path.stat().st_size)
