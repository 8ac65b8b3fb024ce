"""Letters read back from the real PDFs: legal mentions, computed dates and amounts,
PDF/A claim, EPC QR code decoded from the rendered page, SHA-256 of the exact bytes."""

from __future__ import annotations

import hashlib
import io
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal

import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader
from schwifty import IBAN

from activities.letters import formatting as fmt
from activities.letters.payment import PaymentDetailsError, is_creditor_reference
from activities.letters.renderer import LetterRenderer, LetterRenderError
from activities.letters.samples import (
    DISPUTE_KINDS,
    VARIANTS,
    case_for,
    context_from_case,
    demo_sender,
    sample_context,
    sample_dispute,
)
from models.calendar import PARIS
from models.payloads import Channel, LetterKind
from models.policy import SenderIdentity

SENDER = demo_sender()


@pytest.fixture(scope="module")
def renderer():
    r = LetterRenderer()
    yield r
    r.close()


def text_of(pdf: bytes) -> str:
    """Extracted text with every kind of space (NBSP, narrow NBSP) and line break as one space."""
    reader = PdfReader(io.BytesIO(pdf))
    raw = "\n".join(page.extract_text() for page in reader.pages)
    text = re.sub(r"[\s\u00a0\u202f]+", " ", raw)
    return re.sub(r"(?<=\w)- (?=\w)", "-", text)  # a compound word broken at its hyphen


def qr_payloads(pdf: bytes, dpi: int = 200) -> list[str]:
    """Render every page to pixels and decode the QR codes found, as a phone would."""
    found = []
    doc = pypdfium2.PdfDocument(pdf)
    for page in doc:
        image = page.render(scale=dpi / 72).to_pil()
        for barcode in zxingcpp.read_barcodes(image):
            if barcode.format == zxingcpp.BarcodeFormat.QRCode:
                found.append(barcode.text)
    return found


def render(renderer, kind, variant="total", **kw):
    ctx = sample_context(kind, variant, **kw)
    return ctx, renderer.render(ctx, SENDER)


# --- every kind renders -------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LetterKind))
def test_every_kind_renders_a_pdf_whose_hash_is_that_of_the_bytes(renderer, kind):
    ctx, letter = render(renderer, kind)
    assert letter.pdf.startswith(b"%PDF-")
    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
    reader = PdfReader(io.BytesIO(letter.pdf))
    assert letter.page_count == len(reader.pages) >= 1
    text = text_of(letter.pdf)
    assert ctx.contract_id in text
    assert SENDER.name in text


@pytest.mark.parametrize("kind", DISPUTE_KINDS)
def test_every_dispute_kind_renders(renderer, kind):
    ctx = sample_dispute(kind)
    letter = renderer.render_dispute(ctx, SENDER)
    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
    text = text_of(letter.pdf)
    assert ctx.dispute_id in text and ctx.member_name in text


# --- formal notice: legal completeness per case ---------------------------------------------


def test_formal_notice_total_iard_states_everything_l113_3_and_r113_1_require(renderer):
    # DOMAIN.md §1.1 example: due Sunday 1 Nov 2026 → notice Friday 13 Nov → suspension at
    # 00:00 on 15 Dec (13 Dec is a Sunday, moved to 14 Dec) → termination at 00:00 on 25 Dec.
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, "total")
    text = text_of(letter.pdf)
    assert ctx.notice_sent_at.astimezone(PARIS).date() == date(2026, 11, 13)
    assert "à titre de mise en demeure" in text
    assert "LETTRE RECOMMANDÉE ÉLECTRONIQUE" in text  # channel, above the address
    assert "1er novembre 2026" in text  # due date
    assert "85,40 €" in text  # amount
    assert "quatre-vingt-cinq euros et quarante centimes" in text
    assert "suspendues à compter du 15 décembre 2026 à 0 heure" in text
    assert "résilié de plein droit, sans autre avis, à compter du 25 décembre 2026 à 0 heure" in text
    assert "Un paiement partiel ne suspend pas cette procédure" in text
    assert "à midi le lendemain du jour du paiement intégral" in text
    assert "sont à notre charge (article R113-1 du Code des assurances)" in text
    # L113-3 reproduced: alinéas 1 to 4.
    assert "Article L113-3 du Code des assurances" in text
    for passage in (
        "La prime est payable au domicile de l'assureur",
        "la garantie ne peut être suspendue que trente jours après la mise en demeure de l'assuré",
        "L'assureur a le droit de résilier le contrat dix jours après l'expiration du délai de trente jours",
        "Le contrat non résilié reprend pour l'avenir ses effets, à midi le lendemain du jour",
    ):
        assert passage in text, passage
    assert "Le 13 novembre 2026".lower() in text.lower()  # letter date


def test_formal_notice_partial_mutual_without_announced_termination(renderer):
    # First unpaid due Monday 5 Oct 2026 → grace ends Thu 15 Oct → notice Fri 16 Oct;
    # 30 days → Sun 15 Nov, moved to Mon 16 Nov → suspension 00:00 on 17 Nov;
    # 10 days → Thu 26 Nov → termination right from 00:00 on 27 Nov.
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, "partial")
    text = text_of(letter.pdf)
    assert ctx.unpaid_kind == "partial" and not ctx.announce_termination
    assert "(paiement partiel)" in text
    assert "1 543,20 €" in text and "1 350,30 €" in text  # period premium and what was paid
    assert "192,90 €" in text  # unpaid instalments 64,30 + 128,60
    assert "Frais de recouvrement" in text and "10,00 €" in text
    assert "202,90 €" in text and "deux cent deux euros et quatre-vingt-dix centimes" in text
    assert "suspendues à compter du 17 novembre 2026 à 0 heure" in text
    assert "nous aurons le droit de résilier votre contrat" in text
    assert "27 novembre 2026 à 0 heure" in text
    assert "sera résilié" not in text  # not announced: only the right to terminate is stated
    assert "Article L221-7 du Code de la mutualité" in text
    assert "le défaut de paiement de la cotisation est susceptible d'entraîner la résiliation" in text
    assert "cotisation" in text and "5 octobre 2026" in text and "5 novembre 2026" in text


def test_formal_notice_collective_goes_to_the_employer_and_names_member_and_contract(renderer):
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, "collective")
    text = text_of(letter.pdf)
    assert ctx.recipient.name == "SARL Boulangerie Martin & Fils"
    assert "SARL Boulangerie Martin & Fils" in text and "31000 TOULOUSE" in text
    assert "concernant M. Julien Petit" in text
    assert f"contrat collectif n° {ctx.contract_id}" in text
    assert "12 345,67 €" in text
    assert "douze mille trois cent quarante-cinq euros et soixante-sept centimes" in text
    assert "suspendues à compter du 15 décembre 2026 à 0 heure" in text
    assert "le contrat collectif sera dénoncé" in text  # prévoyance: "dénonciation"
    assert "25 décembre 2026 à 0 heure" in text
    assert "L932-9 du Code de la sécurité sociale" in text
    assert "informer les salariés concernés" in text


def test_formal_notice_compulsory_membership_has_no_suspension_nor_termination(renderer):
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, "compulsory")
    text = text_of(letter.pdf)
    assert ctx.compulsory_membership and ctx.suspension_at is None and ctx.termination_at is None
    assert "à titre de mise en demeure" in text
    assert "ni suspendues ni résiliées" in text
    assert "pénalités de retard" in text
    assert "suspendues à compter du" not in text and "à compter du" not in text
    assert "L221-8 du Code de la mutualité" in text


@pytest.mark.parametrize(
    ("variant", "outcome", "verb"), [("life", "termination", "résilié"), ("life_reduction", "reduction", "réduit")]
)
def test_life_letter_l132_20_forty_days_no_suspension_no_action_for_payment(renderer, variant, outcome, verb):
    # Notice Fri 13 Nov 2026 + 40 days = Wed 23 Dec → effect at 00:00 on 24 Dec.
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, variant)
    text = text_of(letter.pdf)
    assert ctx.life_outcome == outcome and ctx.suspension_at is None
    assert "article L132-20 du Code des assurances" in text
    assert "délai de quarante jours à compter de l'envoi de la présente lettre" in text
    assert f"{verb} à compter du 24 décembre 2026 à 0 heure" in text
    assert "l'assureur n'a pas d'action pour exiger le paiement des primes" in text
    assert "ne sont pas suspendues" in text
    assert "suspendues à compter" not in text
    assert "L'entreprise d'assurance ou de capitalisation n'a pas d'action pour exiger le paiement des primes" in text


def test_demo_clock_letters_say_so(renderer):
    _, letter = render(renderer, LetterKind.FORMAL_NOTICE, "total", demo_clock=True)
    assert "DÉMONSTRATION — horloge accélérée, sans valeur juridique" in text_of(letter.pdf)
    _, real = render(renderer, LetterKind.FORMAL_NOTICE, "total")
    assert "DÉMONSTRATION" not in text_of(real.pdf)


# --- other recovery letters --------------------------------------------------------------


def test_reminder_is_friendly_and_has_the_payment_link(renderer):
    ctx, letter = render(renderer, LetterKind.REMINDER, "total")
    text = text_of(letter.pdf)
    assert "Rappel" in text and "mise en demeure" in text  # announces what follows
    assert "à titre de mise en demeure" not in text
    assert f"https://paiement.mutuelle-demo.example/p/{ctx.contract_id}" in text.replace(" ", "")
    assert "85,40 €" in text
    assert "ENVOI RECOMMANDÉ ÉLECTRONIQUE" in text  # the default reminder channel is ERE


def test_suspension_notice_states_what_reinstates_cover(renderer):
    case = case_for("total")
    ctx = context_from_case(case, LetterKind.SUSPENSION_NOTICE, due_during_suspension=Decimal("85.40"))
    text = text_of(renderer.render(ctx, SENDER).pdf)
    assert "suspendues depuis le 15 décembre 2026 à 0 heure" in text
    assert "170,80 €" in text  # arrears + the instalment fallen due during the suspension
    assert "venues à échéance pendant la suspension" in text
    assert "à midi le lendemain du jour du paiement intégral" in text
    assert "résilié à compter du 25 décembre 2026 à 0 heure" in text
    assert "13 novembre 2026" in text  # the notice it follows


def test_termination_letter_non_life_claims_the_balance(renderer):
    ctx, letter = render(renderer, LetterKind.TERMINATION, "total")
    text = text_of(letter.pdf)
    assert "résiliation de votre contrat à compter du 25 décembre 2026 à 0 heure" in text
    assert "reste exigible" in text and "85,40 €" in text
    assert qr_payloads(letter.pdf), "a letter claiming a balance carries the EPC QR code"


def test_termination_letter_life_asks_for_nothing(renderer):
    ctx, letter = render(renderer, LetterKind.TERMINATION, "life_reduction")
    text = text_of(letter.pdf)
    assert "réduit à compter du 24 décembre 2026 à 0 heure" in text
    assert "aucune somme ne vous est réclamée" in text
    assert "Pour régler" not in text
    assert qr_payloads(letter.pdf) == []


def test_reinstatement_at_noon_the_day_after_payment(renderer):
    case = case_for("total")
    paid_at = datetime(2026, 12, 17, 16, 45, tzinfo=PARIS)
    ctx = context_from_case(case, LetterKind.REINSTATEMENT, paid_at=paid_at)
    text = text_of(renderer.render(ctx, SENDER).pdf)
    assert "repris leurs effets le 18 décembre 2026 à midi" in text
    assert "85,40 €" in text
    assert "Pour régler" not in text


def test_payment_acknowledgement_says_a_partial_payment_stops_nothing(renderer):
    ctx, letter = render(renderer, LetterKind.PAYMENT_ACKNOWLEDGEMENT, "total")
    text = text_of(letter.pdf)
    assert ctx.amount_paid == Decimal("42.70") and ctx.balance == Decimal("42.70")
    assert "Un paiement partiel ne suspend pas la procédure" in text
    assert "les garanties seront suspendues à compter du 15 décembre 2026 à 0 heure" in text
    later = ctx.model_copy(update={"letter_date": date(2026, 12, 16)})
    assert "les garanties restent suspendues depuis le 15 décembre 2026 à 0 heure" in text_of(renderer.render(later, SENDER).pdf)
    assert [p.split("\n")[7] for p in qr_payloads(letter.pdf)] == ["EUR42.7"]


def test_litigation_summary_lists_the_facts(renderer):
    ctx, letter = render(renderer, LetterKind.LITIGATION_SUMMARY, "partial")
    text = text_of(letter.pdf)
    assert "Transmission au contentieux" in text
    assert "Mme Claire Dubois" in text and ctx.contract_id in text
    assert "13 novembre" not in text  # partial case: notice on 16 Oct
    assert "16 octobre 2026 à 09:00 (heure de Paris)" in text
    assert "17 novembre 2026 à 0 heure" in text and "27 novembre 2026 à 0 heure" in text
    assert "202,90 €" in text
    assert "Pour régler" not in text


# --- payment: link and EPC QR code ----------------------------------------------------------


def parse_epc(payload: str) -> dict[str, str]:
    lines = payload.split("\n")
    assert lines[0] == "BCD" and lines[1] in ("001", "002") and lines[3] == "SCT", lines
    return {
        "bic": lines[4], "name": lines[5], "iban": lines[6], "amount": lines[7],
        "purpose": lines[8] if len(lines) > 8 else "", "reference": lines[9] if len(lines) > 9 else "",
        "text": lines[10] if len(lines) > 10 else "",
    }


@pytest.mark.parametrize(
    ("kind", "variant", "amount"),
    [
        (LetterKind.FORMAL_NOTICE, "total", "EUR85.4"),
        (LetterKind.FORMAL_NOTICE, "partial", "EUR202.9"),
        (LetterKind.FORMAL_NOTICE, "collective", "EUR12345.67"),
        (LetterKind.REMINDER, "partial", "EUR192.9"),  # no recovery fee on a reminder
        (LetterKind.SUSPENSION_NOTICE, "total", "EUR85.4"),
    ],
)
def test_epc_qr_code_decodes_to_a_valid_sepa_transfer(renderer, kind, variant, amount):
    ctx, letter = render(renderer, kind, variant)
    payloads = qr_payloads(letter.pdf)
    assert len(payloads) == 1
    epc = parse_epc(payloads[0])
    iban = IBAN(epc["iban"])  # raises if the printed IBAN is not valid
    assert iban.compact == IBAN(SENDER.iban).compact
    assert epc["bic"] == SENDER.bic and epc["name"] == SENDER.name
    assert epc["amount"] == amount
    assert epc["text"] == ctx.payment_reference == f"IMP-{ctx.contract_id}"
    text = text_of(letter.pdf)
    assert ctx.payment_reference in text and iban.formatted in text


def test_epc_reference_defaults_to_the_contract_and_uses_structured_rf_when_valid(renderer):
    ctx = sample_context(LetterKind.FORMAL_NOTICE, "total").model_copy(update={"payment_reference": None})
    epc = parse_epc(qr_payloads(renderer.render(ctx, SENDER).pdf)[0])
    assert epc["text"] == ctx.contract_id
    assert is_creditor_reference("RF18 5390 0754 7034")
    ctx = ctx.model_copy(update={"payment_reference": "RF18539007547034"})
    epc = parse_epc(qr_payloads(renderer.render(ctx, SENDER).pdf)[0])
    assert epc["reference"] == "RF18539007547034" and epc["text"] == ""


def test_invalid_iban_fails_the_render_instead_of_printing_it(renderer):
    bad = SENDER.model_copy(update={"iban": "FR7630006000011234567890188"})
    with pytest.raises(PaymentDetailsError, match="invalid IBAN"):
        renderer.render(sample_context(LetterKind.FORMAL_NOTICE), bad)


def test_a_notice_or_reminder_for_nothing_is_refused(renderer):
    for kind in (LetterKind.FORMAL_NOTICE, LetterKind.REMINDER):
        ctx = sample_context(kind).model_copy(update={"amount_due": Decimal("0"), "balance": Decimal("0")})
        with pytest.raises(LetterRenderError, match="asks for nothing"):
            renderer.render(ctx, SENDER)


def test_letters_that_ask_for_nothing_have_no_qr(renderer):
    for kind in (LetterKind.REINSTATEMENT, LetterKind.LITIGATION_SUMMARY):
        _, letter = render(renderer, kind)
        assert qr_payloads(letter.pdf) == []


# --- archival: PDF/A, metadata, reproducibility ------------------------------------------------


def test_pdfa_3b_claim_metadata_and_embedded_fonts(renderer):
    ctx, letter = render(renderer, LetterKind.FORMAL_NOTICE, "partial")
    reader = PdfReader(io.BytesIO(letter.pdf))
    xmp = reader.xmp_metadata
    assert xmp is not None
    assert xmp.pdfaid_part == "3" and xmp.pdfaid_conformance == "B"
    info = reader.metadata
    assert info.title == f"Mise en demeure — contrat {ctx.contract_id}"
    assert info.author == SENDER.name
    keywords = info["/Keywords"]
    assert "kind:formal_notice" in keywords and f"contract:{ctx.contract_id}" in keywords
    assert f"letter:{ctx.letter_id}" in keywords
    # PDF/A: the Info dictionary and the XMP packet must say the same thing.
    assert xmp.dc_title["x-default"] == info.title
    assert xmp.dc_creator == [info.author]
    assert xmp.pdf_keywords == keywords
    assert xmp.dc_description["x-default"] == info.subject
    assert xmp.xmp_create_date.date() == ctx.letter_date  # the letter date, not the wall clock
    catalog = reader.trailer["/Root"]
    intents = catalog["/OutputIntents"]
    assert intents[0].get_object()["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intents[0].get_object()
    assert catalog["/Lang"] == "fr"
    assert "/ID" in reader.trailer
    # PDF/A forbids non-embedded fonts: every font descriptor carries its font file.
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_same_context_gives_the_same_bytes(renderer):
    ctx = sample_context(LetterKind.FORMAL_NOTICE, "collective")
    a, b = renderer.render(ctx, SENDER), renderer.render(ctx, SENDER)
    assert a.pdf == b.pdf and a.sha256 == b.sha256
    other = renderer.render(ctx.model_copy(update={"letter_id": ctx.letter_id + "-bis"}), SENDER)
    assert other.sha256 != a.sha256


def test_render_many_matches_single_renders_byte_for_byte():
    items = [(sample_context(LetterKind.FORMAL_NOTICE, VARIANTS[i % len(VARIANTS)], i), SENDER) for i in range(10)]
    with LetterRenderer(workers=2) as batch:
        many = batch.render_many(items)
    single = LetterRenderer(workers=1)
    assert len(many) == len(items)
    for (ctx, sender), letter in zip(items, many, strict=True):
        assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
        assert letter.pdf == single.render(ctx, sender).pdf
    assert len({letter.sha256 for letter in many}) == len(items)


def test_names_beyond_latin_1_use_the_extension_font_and_stay_reproducible(renderer):
    ctx = sample_context(LetterKind.FORMAL_NOTICE, "total")
    name = "Mme Nguyễn Thị Ánh — Ольга Σοφία Łukasiewicz"
    ctx = ctx.model_copy(update={"recipient": ctx.recipient.model_copy(update={"name": name})})
    a, b = renderer.render(ctx, SENDER), renderer.render(ctx, SENDER)
    assert a.pdf == b.pdf
    assert name in text_of(a.pdf)
    reader = PdfReader(io.BytesIO(a.pdf))
    fonts = {f.get_object()["/BaseFont"].split("+")[-1] for p in reader.pages for f in p["/Resources"]["/Font"].values()}
    assert fonts == {"Lettre-Sans", "Lettre-Sans-Bold", "Lettre-Sans-Ext-Bold"}  # no system font


def test_render_is_thread_safe(renderer):
    contexts = [sample_context(LetterKind.FORMAL_NOTICE, VARIANTS[i % len(VARIANTS)], i) for i in range(6)]
    expected = [renderer.render(c, SENDER).sha256 for c in contexts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: renderer.render(c, SENDER).sha256, contexts))
    assert got == expected


def test_logo_and_missing_logo(renderer, tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), (11, 58, 100)).save(logo)
    letter = renderer.render(sample_context(LetterKind.REMINDER), SENDER.model_copy(update={"logo_path": str(logo)}))
    assert b"/Subtype /Image" in letter.pdf or b"/Image" in letter.pdf
    with pytest.raises(LetterRenderError, match="logo not found"):
        renderer.render(sample_context(LetterKind.REMINDER), SENDER.model_copy(update={"logo_path": str(tmp_path / "nope.png")}))


def test_paper_channel_and_foreign_address(renderer):
    ctx = sample_context(LetterKind.FORMAL_NOTICE, "total").model_copy(update={"channel": Channel.PAPER})
    addr = ctx.recipient.address.model_copy(update={"country": "BE", "postal_code": "1000", "city": "Bruxelles"})
    ctx = ctx.model_copy(update={"recipient": ctx.recipient.model_copy(update={"address": addr})})
    text = text_of(renderer.render(ctx, SENDER).pdf)
    assert "LETTRE RECOMMANDÉE AVEC AVIS DE RÉCEPTION" in text
    assert "1000 BRUXELLES BE" in text


# --- disputes ------------------------------------------------------------------------------


def test_dispute_rejection_names_the_mediator_and_how_to_reach_them(renderer):
    ctx = sample_dispute("dispute_answer", outcome="rejected")
    text = text_of(renderer.render_dispute(ctx, SENDER).pdf)
    assert "Réclamation rejetée" in text
    assert "Nous ne sommes pas en mesure de faire droit à votre réclamation" in text
    assert "Médiation de la Mutualité" in text
    assert "https://www.mediateur-mutualite.fr" in text and "255 rue de Vaugirard" in text
    assert "un an après votre réclamation écrite" in text


def test_dispute_answer_upheld_pays_and_has_no_mediator_block(renderer):
    ctx = sample_dispute("dispute_answer", outcome="upheld")
    text = text_of(renderer.render_dispute(ctx, SENDER).pdf)
    assert "Nous faisons droit à votre réclamation" in text
    assert "42,50 €" in text and "quarante-deux euros et cinquante centimes" in text
    assert "Recours au médiateur" not in text


def test_dispute_acknowledgement_gives_the_answer_deadline(renderer):
    ctx = sample_dispute("dispute_acknowledgement")
    text = text_of(renderer.render_dispute(ctx, SENDER).pdf)
    assert "18 décembre 2026" in text and "au plus tard le 16 février 2027" in text
    assert ctx.dispute_id in text


def test_mediation_referral(renderer):
    text = text_of(renderer.render_dispute(sample_dispute("mediation_referral"), SENDER).pdf)
    assert "Médiation de la Mutualité" in text and "90 jours" in text


def test_dispute_answer_without_outcome_is_refused(renderer):
    ctx = sample_dispute("dispute_answer").model_copy(update={"outcome": None})
    with pytest.raises(LetterRenderError, match="outcome"):
        renderer.render_dispute(ctx, SENDER)


# --- formatting -------------------------------------------------------------------------


def test_french_formatting():
    assert fmt.money(Decimal("1234.56")) == "1\u202f234,56\u00a0€"
    assert fmt.money_words(Decimal("1234.56")) == "mille deux cent trente-quatre euros et cinquante-six centimes"
    assert fmt.money_words(Decimal("1.01")) == "un euro et un centime"
    assert fmt.money_words(Decimal("1000000")) == "un million d'euros"
    assert fmt.money_words(Decimal("80")) == "quatre-vingts euros"
    assert fmt.long_date(date(2026, 11, 22)) == "22 novembre 2026"
    assert fmt.long_date(date(2026, 11, 1)) == "1er novembre 2026"
    assert fmt.instant(datetime(2026, 12, 15, 0, 0, tzinfo=PARIS)) == "15 décembre 2026 à 0 heure"
    assert fmt.instant(datetime(2026, 12, 16, 12, 0, tzinfo=PARIS)) == "16 décembre 2026 à midi"
    # An instant is printed in Paris time whatever its offset: 23:30 UTC on 28 Mar is 29 Mar.
    from datetime import timezone

    assert fmt.long_date(datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)) == "29 mars 2026"


def test_sender_identity_from_policy_is_printed(renderer):
    sender = SenderIdentity(
        name="Assurances Exemple SA",
        address_lines=["4 quai des Assureurs", "33000 Bordeaux"],
        legal_mentions="SA au capital de 1 000 000 € — RCS Bordeaux 000 000 000 — ORIAS 00 000 000",
        contact="contact@exemple.example",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        payment_url_template="https://pay.exemple.example/{contract_id}",
    )
    ctx = sample_context(LetterKind.FORMAL_NOTICE, "total")
    letter = renderer.render(ctx, sender)
    text = text_of(letter.pdf)
    assert "Assurances Exemple SA" in text and "ORIAS 00 000 000" in text and "Bordeaux, le 13 novembre 2026" in text
    assert f"https://pay.exemple.example/{ctx.contract_id}" in text
    epc = parse_epc(qr_payloads(letter.pdf)[0])
    assert epc["iban"] == "DE89370400440532013000" and epc["bic"] == "COBADEFFXXX"


# --- CLI ----------------------------------------------------------------------------------


def test_cli_letters_render_samples_and_case(tmp_path):
    import typer
    from typer.testing import CliRunner

    from starter.cli_letters import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["letters", "render", "--kind", "reminder", "--count", "2", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "s").glob("*.pdf"))
    assert len(files) == 2
    for path in files:
        assert f"sha256={hashlib.sha256(path.read_bytes()).hexdigest()}" in result.output

    case = tmp_path / "case.json"
    case.write_text(case_for("life_reduction").model_dump_json(), encoding="utf-8")
    result = runner.invoke(app, ["letters", "render", "--kind", "formal_notice", "--case", str(case), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    (pdf,) = (tmp_path / "c").glob("*.pdf")
    assert "réduit à compter du 24 décembre 2026 à 0 heure" in text_of(pdf.read_bytes())

    result = runner.invoke(app, ["letters", "render", "--kind", "nonsense", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown kind" in result.output
