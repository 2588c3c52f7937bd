"""Cards policy: which complaints are replaced at once, fault-credit limits, stock draw rules.

Every number here is a *default* of SPEC.md section 4 that lives in configuration; each decision
records the policy version it was made under.
"""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import RAISE, Schema, fields, validate

from schemas.cards import CardComplaintPayload
from schemas.fields import MAX_AMOUNT_MINOR

# The complaint contract's problem codes: a policy naming any other is refused at start.
PROBLEMS: tuple[str, ...] = next(
    tuple(v.choices) for v in CardComplaintPayload._declared_fields["problem"].validators
    if isinstance(v, validate.OneOf)
)


@dataclass(frozen=True)
class CardsPolicy:
    # C.REPLACE_NOW / C.NOT_ELIGIBLE: problems that count as charge-related quality problems.
    # A complaint is replaced at once only if the outlet also marks it chargeRelated.
    replaceable_problems: frozenset[str]
    # C.REPLACE_NOW: the most value a complaint may add for "value the fault wrongly consumed"
    # without a person looking at it. A larger claim (or one above what the card ever consumed)
    # does not hold the replacement up: the card is replaced with its remaining value and the
    # credit is referred.
    max_fault_credit_minor: int
    # C.STOCK: a stock card expiring sooner than this is not handed out as a replacement.
    min_replacement_validity_days: int
    # C.STOCK: prefer a stock card of the old card's face value when the outlet has one.
    prefer_same_face_value: bool = True


class CardsPolicySchema(Schema):
    class Meta:
        unknown = RAISE

    policyVersion = fields.String(required=True, validate=validate.Length(1, 64))
    replaceableProblems = fields.List(
        fields.String(validate=validate.OneOf(PROBLEMS)), required=True, validate=validate.Length(min=1)
    )
    maxFaultCreditMinor = fields.Integer(required=True, strict=True, validate=validate.Range(0, MAX_AMOUNT_MINOR))
    minReplacementValidityDays = fields.Integer(required=True, strict=True, validate=validate.Range(0, 3650))
    preferSameFaceValue = fields.Boolean(required=True)


def build_policy(document: dict) -> CardsPolicy:
    return CardsPolicy(
        replaceable_problems=frozenset(document["replaceableProblems"]),
        max_fault_credit_minor=document["maxFaultCreditMinor"],
        min_replacement_validity_days=document["minReplacementValidityDays"],
        prefer_same_face_value=document["preferSameFaceValue"],
    )
