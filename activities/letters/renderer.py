"""Letters as archived PDF/A: jinja2 HTML templates rendered by WeasyPrint.

Every letter is its own PDF/A-3b document whose SHA-256 is computed over the exact bytes
returned, so the bytes sent to the LRE provider are the bytes archived.

Speed (issue 3, bench/letters_bench.py): WeasyPrint spends most of a render subsetting
fonts. The letters use a pre-built Latin subset of DejaVu Sans (templates/letters/fonts,
see ``fontbuild``) embedded whole (``full_fonts``), which removes that step; the stylesheet
is parsed once per renderer; ``render_many`` spreads a batch over a process pool (one
warm renderer per process).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import zlib
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import pydyf
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from activities.letters import formatting as fmt
from activities.letters.payment import PaymentBlock, payment_block
from activities.letters.wording import (
    CHANNEL_LABELS,
    DISPUTE_TITLES,
    OUTCOME_LABELS,
    is_collective,
    letter_title,
    template_name,
    vocabulary,
)
from models.calendar import paris_date
from models.letters import DisputeLetterContext, LetterContext, RenderedLetter
from models.payloads import LetterKind, Regime
from models.policy import SenderIdentity

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "letters"
DISPUTE_KINDS = ("dispute_acknowledgement", "dispute_answer", "mediation_referral")
# Letters that ask the recipient for money carry the payment link and the EPC QR code.
_MONEY_KINDS = frozenset(
    {
        LetterKind.REMINDER,
        LetterKind.FORMAL_NOTICE,
        LetterKind.SUSPENSION_NOTICE,
        LetterKind.TERMINATION,
        LetterKind.PAYMENT_ACKNOWLEDGEMENT,
    }
)
# Below this many letters a batch is rendered in-process: starting workers costs more.
_POOL_MIN_BATCH = 8


class LetterRenderError(ValueError):
    """The letter cannot be rendered from this context (bad data, not a transient fault)."""


def amount_requested(ctx: LetterContext) -> Decimal:
    """What the letter asks the recipient to pay now: the balance left on what stops the
    procedure (or reinstates cover), i.e. ``amount_due`` minus what was already paid."""
    if ctx.balance > 0:
        return ctx.balance
    return max(ctx.amount_due - ctx.amount_paid, Decimal("0"))


def asks_for_money(ctx: LetterContext) -> bool:
    kind = LetterKind(ctx.kind)
    if kind not in _MONEY_KINDS or amount_requested(ctx) <= 0:
        return False
    # L132-20: the life insurer has no action to demand payment once the contract is
    # terminated or reduced; nothing is asked after that.
    if Regime(ctx.regime) is Regime.VIE and kind is LetterKind.TERMINATION:
        return False
    return True


class LetterRenderer:
    """Renders recovery and dispute letters. Thread-safe: one lock serialises WeasyPrint
    (its font configuration is shared), which costs nothing under the GIL."""

    def __init__(
        self,
        templates_dir: Path | None = None,
        *,
        pdf_variant: str | None = "pdf/a-3b",
        workers: int | None = None,
    ) -> None:
        self.templates_dir = Path(templates_dir or DEFAULT_TEMPLATES_DIR).resolve()
        self.pdf_variant = pdf_variant
        self.workers = workers if workers is not None else _available_cpus()
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            autoescape=jinja2.select_autoescape(["html", "j2"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(
            money=_money_filter,
            words=fmt.money_words,
            date=fmt.long_date,
            short_date=fmt.short_date,
            instant=fmt.instant,
            timestamp=fmt.instant_with_time,
        )
        self._lock = threading.RLock()
        self._font_config = FontConfiguration()
        self._stylesheet = CSS(
            filename=str(self.templates_dir / "letter.css"), font_config=self._font_config
        )
        self._pool: Executor | None = None
        self._covered = _covered_codepoints(self.templates_dir / "fonts")
        self._deflated_fonts: dict[bytes, bytes] = {}

    # -- public interface -----------------------------------------------------------------

    def render(self, ctx: LetterContext, sender: SenderIdentity) -> RenderedLetter:
        """One recovery letter as a PDF/A file; ``sha256`` is that of the returned bytes.

        Raises ``LetterRenderError`` / ``PaymentDetailsError`` (both ``ValueError``) for
        data no retry will fix: unknown template, notice asking for nothing, invalid IBAN,
        missing logo."""
        html = self.render_html(ctx, sender)
        return self._to_pdf(html)

    def render_dispute(self, ctx: DisputeLetterContext, sender: SenderIdentity) -> RenderedLetter:
        """One letter of the disputes process (acknowledgement, answer, mediation referral)."""
        html = self.render_dispute_html(ctx, sender)
        return self._to_pdf(html)

    def render_many(self, items: list[tuple[LetterContext, SenderIdentity]]) -> list[RenderedLetter]:
        """Batch path: same result as ``[render(c, s) for c, s in items]`` (each letter its
        own PDF/A with its own hash, byte-identical to a single render), spread over the
        CPUs for large batches by a spawn-based process pool kept until ``close()``.
        Like any ``multiprocessing`` user, a calling *script* needs an
        ``if __name__ == "__main__":`` guard."""
        if not items:
            return []
        if self.workers <= 1 or len(items) < _POOL_MIN_BATCH:
            return [self.render(ctx, sender) for ctx, sender in items]
        pool = self._get_pool()
        # Several chunks per worker keep both cores busy to the end of the batch.
        n_chunks = min(len(items), self.workers * 4)
        size = -(-len(items) // n_chunks)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results: list[RenderedLetter] = []
        try:
            for part in pool.map(_render_chunk, [(str(self.templates_dir), self.pdf_variant, c) for c in chunks]):
                results.extend(part)
        except BrokenProcessPool:
            # A worker died (killed, out of memory, or a caller script without an
            # ``if __name__ == "__main__"`` guard, which spawned workers re-import): the
            # batch is still rendered, in this process.
            log.warning("letter render pool broken; rendering %d letters in-process", len(items))
            self.close()
            self.workers = 1
            return [self.render(ctx, sender) for ctx, sender in items]
        return results

    def close(self) -> None:
        """Stop the batch worker processes, if any were started."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> LetterRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTML -----------------------------------------------------------------------------

    def render_html(self, ctx: LetterContext, sender: SenderIdentity) -> str:
        kind = LetterKind(ctx.kind)
        regime = Regime(ctx.regime)
        if kind in (LetterKind.REMINDER, LetterKind.FORMAL_NOTICE) and amount_requested(ctx) <= 0:
            # A registered notice demanding 0,00 € is a caller bug, never a letter to send.
            raise LetterRenderError(f"{kind.value} for {ctx.contract_id} asks for nothing (amount_due {ctx.amount_due}, balance {ctx.balance})")
        vocab = vocabulary(regime)
        payment: PaymentBlock | None = None
        if asks_for_money(ctx):
            payment = payment_block(
                sender,
                amount=amount_requested(ctx),
                currency=ctx.currency,
                contract_id=ctx.contract_id,
                reference=ctx.payment_reference,
            )
        title = letter_title(ctx)
        recipient_lines = _address_lines(ctx.recipient.name, ctx.recipient.address)
        values = dict(
            ctx=ctx,
            sender=sender,
            v=vocab,
            kind=kind.value,
            regime=regime.value,
            title=title,
            collective=is_collective(ctx),
            life=regime is Regime.VIE,
            compulsory=ctx.compulsory_membership,
            payment=payment,
            to_pay=amount_requested(ctx),
            channel_label=CHANNEL_LABELS.get(ctx.channel, ""),
            recipient_lines=recipient_lines,
            logo_uri=_logo_uri(sender),
            meta=_metadata(
                title=f"{title} — contrat {ctx.contract_id}",
                author=sender.name,
                kind=kind.value,
                contract=ctx.contract_id,
                letter_id=ctx.letter_id,
                letter_date=ctx.letter_date,
                regime=regime.value,
            ),
            reference_lines=[
                ("Contrat n°", ctx.contract_id),
                ("Référence", ctx.letter_id),
            ],
            demo=ctx.demo_clock,
            suspended_now=bool(ctx.suspension_at and ctx.letter_date >= paris_date(ctx.suspension_at)),
        )
        return self._template(template_name(ctx)).render(values)

    def render_dispute_html(self, ctx: DisputeLetterContext, sender: SenderIdentity) -> str:
        if ctx.kind not in DISPUTE_KINDS:
            raise LetterRenderError(f"unknown dispute letter kind {ctx.kind!r}; expected one of {DISPUTE_KINDS}")
        if ctx.kind == "dispute_answer" and ctx.outcome not in OUTCOME_LABELS:
            raise LetterRenderError(f"a dispute answer needs an outcome in {tuple(OUTCOME_LABELS)}, got {ctx.outcome!r}")
        title = DISPUTE_TITLES[ctx.kind]
        refs = [("Réclamation n°", ctx.dispute_id)]
        if ctx.contract_id:
            refs.append(("Contrat n°", ctx.contract_id))
        if ctx.member_id:
            refs.append(("Adhérent n°", ctx.member_id))
        refs.append(("Référence", ctx.letter_id))
        values = dict(
            ctx=ctx,
            sender=sender,
            kind=ctx.kind,
            title=title,
            outcome_label=OUTCOME_LABELS.get(ctx.outcome or "", ""),
            channel_label="",
            recipient_lines=[ctx.member_name, *ctx.member_address],
            logo_uri=_logo_uri(sender),
            meta=_metadata(
                title=f"{title} — réclamation {ctx.dispute_id}",
                author=sender.name,
                kind=ctx.kind,
                contract=ctx.contract_id or "",
                letter_id=ctx.letter_id,
                letter_date=ctx.letter_date,
                regime="",
            ),
            reference_lines=refs,
            demo=ctx.demo_clock,
        )
        return self._template(f"{ctx.kind}.html.j2").render(values)

    # -- internals ------------------------------------------------------------------------

    def _template(self, name: str) -> jinja2.Template:
        with self._lock:  # jinja2's template cache is not documented as thread-safe
            try:
                return self._env.get_template(name)
            except jinja2.TemplateNotFound as exc:
                raise LetterRenderError(f"no template {name!r} in {self.templates_dir}") from exc

    def _to_pdf(self, html: str) -> RenderedLetter:
        # The letter fonts are small Latin subsets embedded whole (no per-letter subsetting).
        # A character they lack (a Vietnamese name, say) makes WeasyPrint fall back to a
        # system font; that letter is then written with subsetting, or the whole 750 kB
        # fallback font would be embedded.
        full_fonts = not any(ord(ch) not in self._covered for ch in set(html))
        with self._lock:
            document = HTML(string=html, base_url=str(self.templates_dir) + "/").render(
                stylesheets=[self._stylesheet],
                font_config=self._font_config,
                pdf_variant=self.pdf_variant,
                full_fonts=full_fonts,
            )
            pdf = document.write_pdf(
                pdf_variant=self.pdf_variant,
                full_fonts=full_fonts,
                finisher=self._reuse_compressed_fonts if full_fonts else None,
            )
        return RenderedLetter(pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest(), page_count=len(document.pages))

    def _reuse_compressed_fonts(self, document: Any, pdf: Any) -> None:
        """WeasyPrint deflates (level 9) every embedded font file on every letter; ours are
        the same few files each time, so each is deflated once per renderer and its
        compressed bytes reused. The PDF written is byte-identical (same zlib settings as
        pydyf, same dictionary keys in the same order)."""
        for obj in pdf.objects:
            if not (isinstance(obj, pydyf.Stream) and obj.compress and "Length1" in obj.extra):
                continue
            if len(obj.stream) != 1 or not isinstance(obj.stream[0], bytes):
                continue
            raw = obj.stream[0]
            packed = self._deflated_fonts.get(raw)
            if packed is None:
                deflate = zlib.compressobj(level=9)
                packed = deflate.compress(raw) + deflate.flush()
                if len(self._deflated_fonts) < 8:
                    self._deflated_fonts[raw] = packed
            obj.stream = [packed]
            obj.compress = False
            obj.extra["Filter"] = "/FlateDecode"

    def _get_pool(self) -> Executor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the caller is often a multi-threaded Temporal worker.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(str(self.templates_dir), self.pdf_variant),
                )
            return self._pool


# -- process pool side ---------------------------------------------------------------------

_worker_renderer: LetterRenderer | None = None


def _init_worker(templates_dir: str, pdf_variant: str | None) -> None:
    global _worker_renderer
    _worker_renderer = LetterRenderer(Path(templates_dir), pdf_variant=pdf_variant, workers=1)


def _render_chunk(args: tuple[str, str | None, list[tuple[LetterContext, SenderIdentity]]]) -> list[RenderedLetter]:
    templates_dir, pdf_variant, items = args
    renderer = _worker_renderer
    if renderer is None or str(renderer.templates_dir) != templates_dir or renderer.pdf_variant != pdf_variant:
        renderer = LetterRenderer(Path(templates_dir), pdf_variant=pdf_variant, workers=1)
    return [renderer.render(ctx, sender) for ctx, sender in items]


# -- helpers -------------------------------------------------------------------------------


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _covered_codepoints(fonts_dir: Path) -> frozenset[int]:
    """Code points the letter fonts have a glyph for: for each family (file stem before
    the style), the glyphs every style has; then the union of the families."""
    from fontTools.ttLib import TTFont

    families: dict[str, list[set[int]]] = {}
    for path in sorted(fonts_dir.glob("*.ttf")):
        families.setdefault(path.stem.split("-")[0], []).append(set(TTFont(path, lazy=True).getBestCmap()))
    covered: set[int] = {0x09, 0x0A, 0x0D}  # whitespace in the HTML source
    for styles in families.values():
        covered |= set.intersection(*styles)
    return frozenset(covered)


def _money_filter(amount: Any, currency: str = "EUR") -> str:
    return fmt.money(amount, currency)


def _address_lines(name: str, address: Any) -> list[str]:
    lines = [name]
    if address is not None:
        lines.append(address.line1)
        if address.line2:
            lines.append(address.line2)
        lines.append(f"{address.postal_code} {address.city.upper()}")
        if address.country and address.country.upper() not in ("FR", "FRANCE"):
            lines.append(address.country.upper())
    return lines


def _logo_uri(sender: SenderIdentity) -> str | None:
    if not sender.logo_path:
        return None
    path = Path(sender.logo_path)
    if not path.is_file():
        raise LetterRenderError(f"logo not found for sender {sender.name!r}: {path}")
    return path.resolve().as_uri()


def _metadata(
    *, title: str, author: str, kind: str, contract: str, letter_id: str, letter_date: date, regime: str
) -> dict[str, str]:
    """HTML meta values WeasyPrint writes into the PDF Info dictionary and XMP packet."""
    keywords = [f"kind:{kind}", f"letter:{letter_id}"]
    if contract:
        keywords.insert(1, f"contract:{contract}")
    if regime:
        keywords.append(f"regime:{regime}")
    return {
        "title": title,
        "author": author,
        "description": f"{kind} — contrat {contract or '-'} — lettre {letter_id}",
        "keywords": ", ".join(keywords),
        # The letter date, not the wall clock: the same context gives the same bytes.
        "created": letter_date.isoformat(),
    }
