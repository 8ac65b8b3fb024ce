"""Payment aids printed on every letter that asks for money: a link and a SEPA EPC QR code.

The EPC QR code ("GiroCode", EPC069-12 v002) lets the policyholder's banking app prefill a
SEPA credit transfer: beneficiary, IBAN, amount and remittance reference. The IBAN is
validated with schwifty before anything is printed: a wrong IBAN on a formal notice sends
money nowhere, so it fails the render loudly instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import segno
import segno.helpers
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from models.policy import SenderIdentity


class PaymentDetailsError(ValueError):
    """The portfolio's payment configuration cannot produce a valid transfer (non-retryable)."""


@dataclass(frozen=True)
class PaymentBlock:
    amount: Decimal
    currency: str
    reference: str
    url: str | None
    iban: str  # formatted in groups of four for reading
    bic: str | None
    beneficiary: str
    qr_data_uri: str | None  # None when the currency is not EUR (EPC QR is EUR only)


def is_creditor_reference(ref: str) -> bool:
    """ISO 11649 structured creditor reference (``RF`` + 2 check digits + up to 21 chars)."""
    ref = ref.replace(" ", "").upper()
    if not (5 <= len(ref) <= 25 and ref.startswith("RF") and ref[2:4].isdigit() and ref[4:].isalnum()):
        return False
    rearranged = ref[4:] + ref[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def payment_url(sender: SenderIdentity, contract_id: str, reference: str) -> str | None:
    if not sender.payment_url_template:
        return None
    return sender.payment_url_template.format(contract_id=contract_id, reference=reference)


def payment_block(
    sender: SenderIdentity, *, amount: Decimal, currency: str, contract_id: str, reference: str | None
) -> PaymentBlock:
    reference = (reference or contract_id).strip()
    try:
        iban = IBAN(sender.iban)
    except SchwiftyException as exc:
        raise PaymentDetailsError(f"invalid IBAN for sender {sender.name!r}: {exc}") from exc
    bic: str | None = None
    if sender.bic:
        try:
            bic = str(BIC(sender.bic))
        except SchwiftyException as exc:
            raise PaymentDetailsError(f"invalid BIC for sender {sender.name!r}: {exc}") from exc
    qr_uri = None
    if currency == "EUR" and amount >= Decimal("0.01"):
        beneficiary = sender.name[:70]
        kwargs = {"reference": reference} if is_creditor_reference(reference) else {"text": reference[:140]}
        qr = segno.helpers.make_epc_qr(
            name=beneficiary, iban=iban.compact, amount=amount.quantize(Decimal("0.01")), bic=bic, **kwargs
        )
        # EPC069-12 requires error level M (segno's default for EPC); a quiet zone of 4
        # modules keeps scanners happy. A PNG (4 px per module, drawn without interpolation)
        # costs WeasyPrint far less than the equivalent SVG path.
        qr_uri = qr.png_data_uri(scale=4, border=4, dark="#000000", light="#ffffff")
    return PaymentBlock(
        amount=amount,
        currency=currency,
        reference=reference,
        url=payment_url(sender, contract_id, reference),
        iban=iban.formatted,
        bic=bic,
        beneficiary=sender.name,
        qr_data_uri=qr_uri,
    )
