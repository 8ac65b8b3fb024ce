"""Letter rendering benchmark (issue 3): ms/letter for single and batch renders of formal
notices, next to the single-core floor measured in the same run.

The floor is what the issue defines: a plain one-page French letter, 20 letters sharing
one WeasyPrint render (one document of 20 pages), on one core, with WeasyPrint's defaults.
The goal is ``batch wall-clock per letter <= 0.75 x floor`` on this 2-core machine, while
every batch letter stays its own PDF/A-3b file with its own SHA-256 (checked below).

    .venv/bin/python bench/letters_bench.py [--count 120] [--repeat 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FLOOR_LETTER = """
<section class="letter">
<p>Mutuelle Démo<br>12 rue de la Démonstration<br>75009 Paris</p>
<p style="margin-left: 90mm">Mme Claire Dubois {i}<br>14 rue des Lilas<br>69003 LYON</p>
<p style="margin-left: 90mm">Paris, le 13 novembre 2026</p>
<p><b>Objet : mise en demeure — prime impayée — contrat n° AUTO-2026-{i:05d}</b></p>
<p>Madame, Monsieur,</p>
<p>Sauf erreur de notre part, la prime de votre contrat échue le 1er novembre 2026, d'un
montant de 1 234,56 €, ne nous est pas parvenue à ce jour. Nous vous adressons la présente
lettre à titre de mise en demeure d'avoir à nous régler cette somme.</p>
<p>À défaut de paiement dans un délai de trente jours à compter de l'envoi de la présente
lettre, les garanties de votre contrat seront suspendues à compter du 15 décembre 2026 à
0 heure, et votre contrat sera résilié à compter du 25 décembre 2026 à 0 heure.</p>
<p>Si vous avez effectué ce règlement entre-temps, nous vous prions de ne pas tenir compte
de la présente lettre. Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos
salutations distinguées.</p>
<p style="margin-left: 90mm">Le service Recouvrement</p>
</section>
"""


def floor_ms_per_letter(letters: int = 20) -> float:
    """Single core: ``letters`` plain one-page letters sharing one WeasyPrint render."""
    from weasyprint import HTML

    html = (
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'><title>floor</title><style>"
        "@page { size: A4; margin: 20mm } body { font-family: 'DejaVu Sans'; font-size: 10pt }"
        " .letter { page-break-after: always }</style></head><body>"
        + "".join(FLOOR_LETTER.format(i=i) for i in range(letters))
        + "</body></html>"
    )
    start = time.perf_counter()
    pdf = HTML(string=html).write_pdf()
    elapsed = time.perf_counter() - start
    assert pdf.startswith(b"%PDF")
    return elapsed * 1000 / letters


def floor_cpu_ms_per_letter(letters: int = 20) -> float:
    start = time.process_time()
    floor_ms_per_letter(letters)
    return (time.process_time() - start) * 1000 / letters


def _pool_cpu_seconds(renderer) -> float:
    """CPU time (user + system) used so far by the renderer's worker processes (Linux)."""
    pool = renderer._pool  # noqa: SLF001 - bench-only introspection
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in list(getattr(pool, "_processes", {}) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def timed_batch(renderer, items) -> tuple[float, float, list]:
    """(wall ms/letter, worker CPU ms/letter, letters) for one render_many call."""
    cpu0, start = _pool_cpu_seconds(renderer), time.perf_counter()
    letters = renderer.render_many(items)
    wall = (time.perf_counter() - start) * 1000 / len(items)
    cpu = (_pool_cpu_seconds(renderer) - cpu0) * 1000 / len(items)
    return wall, cpu, letters


def check_letter(letter) -> None:
    """Every batch letter is its own PDF/A-3b file whose hash is that of its bytes."""
    from pypdf import PdfReader

    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
    xmp = PdfReader(io.BytesIO(letter.pdf)).xmp_metadata
    assert xmp is not None and xmp.pdfaid_part == "3" and xmp.pdfaid_conformance == "B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=120, help="formal notices in the batch")
    parser.add_argument("--single", type=int, default=12, help="single renders timed")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="40 notices, one repetition")
    args, _unknown = parser.parse_known_args()  # make bench passes the same arguments to every script
    if args.quick:
        args.count, args.repeat, args.single = 40, 1, 6

    import logging

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from activities.letters.renderer import LetterRenderer
    from activities.letters.samples import VARIANTS, demo_sender, sample_context
    from models.payloads import LetterKind

    sender = demo_sender()
    contexts = [sample_context(LetterKind.FORMAL_NOTICE, VARIANTS[i % len(VARIANTS)], i) for i in range(args.count)]
    items = [(ctx, sender) for ctx in contexts]

    floor_ms_per_letter(2)  # warm WeasyPrint and fontconfig
    renderer = LetterRenderer(workers=1)
    renderer.render(*items[0])  # warm templates and fonts

    floors, floor_cpus, singles, single_cpus, batches, batch_cpus, reminders = [], [], [], [], [], [], []
    reminder_items = [(ctx, sender) for ctx in (sample_context(LetterKind.REMINDER, ("total", "partial", "collective")[i % 3], i) for i in range(args.count))]
    batch_renderer = LetterRenderer()
    t0 = time.perf_counter()
    batch_renderer.render_many(items[: max(8, batch_renderer.workers * 4)])  # start the workers
    cold_start_ms = (time.perf_counter() - t0) * 1000
    for _ in range(args.repeat):
        start = time.perf_counter()
        floor_cpus.append(floor_cpu_ms_per_letter(20))
        floors.append((time.perf_counter() - start) * 1000 / 20)
        start, cpu = time.perf_counter(), time.process_time()
        for ctx, snd in items[: args.single]:
            renderer.render(ctx, snd)
        singles.append((time.perf_counter() - start) * 1000 / args.single)
        single_cpus.append((time.process_time() - cpu) * 1000 / args.single)
        wall, cpu, letters = timed_batch(batch_renderer, items)
        batches.append(wall)
        batch_cpus.append(cpu)
        reminders.append(timed_batch(batch_renderer, reminder_items)[0])
    for letter in letters:
        check_letter(letter)
    assert len({letter.sha256 for letter in letters}) == len(letters)
    batch_renderer.close()

    med = statistics.median
    floor, single, batch, reminder = med(floors), med(singles), med(batches), med(reminders)
    floor_cpu, single_cpu, batch_cpu = med(floor_cpus), med(single_cpus), med(batch_cpus)
    result = {
        "cpus": batch_renderer.workers,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "floor_ms_per_letter": round(floor, 1),
        "single_ms_per_letter": round(single, 1),
        "batch_ms_per_letter": round(batch, 1),
        "batch_letters": len(items),
        "batch_over_floor": round(batch / floor, 2),
        "single_over_floor": round(single / floor, 2),
        "goal_batch_over_floor": 0.75,
        "goal_met": batch / floor <= 0.75,
        "reminder_batch_ms_per_letter": round(reminder, 1),
        "reminder_batch_over_floor": round(reminder / floor, 2),
        "cpu_ms_per_letter": {"floor": round(floor_cpu, 1), "single": round(single_cpu, 1), "batch_workers": round(batch_cpu, 1)},
        # Load-independent view: the workers' CPU per letter spread over the CPUs, against
        # the floor's CPU per letter (what the wall-clock ratio would be on an idle machine).
        "projected_idle_batch_over_floor": round(batch_cpu / batch_renderer.workers / floor_cpu, 2),
        "pool_cold_start_ms": round(cold_start_ms),
        "pages_per_notice": sorted({letter.page_count for letter in letters}),
        "kb_per_notice": round(statistics.mean(len(letter.pdf) for letter in letters) / 1024, 1),
        "samples": {"floor": [round(x, 1) for x in floors], "single": [round(x, 1) for x in singles], "batch": [round(x, 1) for x in batches]},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"letters bench — {result['cpus']} CPU(s), median of {args.repeat}, load avg {result['load_avg_1min']:.2f} (other processes skew wall-clock ratios)")
        print("                                                     wall ms/letter  x floor   CPU ms/letter")
        print(f"  floor  (plain 1-page letter, 20 per render, 1 core) {floor:9.1f}        1.00     {floor_cpu:7.1f}")
        print(f"  single (formal notice, PDF/A-3b, one render each)   {single:9.1f}     {single / floor:7.2f}     {single_cpu:7.1f}")
        print(f"  batch  (render_many, {len(items):3d} formal notices)       {batch:9.1f}     {batch / floor:7.2f}     {batch_cpu:7.1f} (workers)")
        print(f"  batch  (render_many, {len(items):3d} one-page reminders)   {reminder:9.1f}     {reminder / floor:7.2f}")
        print(f"  goal: batch formal notices <= 0.75 x floor: {'met' if result['goal_met'] else 'NOT met'}"
              f" (CPU-bound projection on {result['cpus']} idle CPUs: {result['projected_idle_batch_over_floor']:.2f} x floor)")
        print(f"  each batch letter: own PDF/A-3b file and SHA-256 (checked); {result['kb_per_notice']} kB, pages {result['pages_per_notice']}; pool cold start {cold_start_ms:.0f} ms (excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
