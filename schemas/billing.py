"""Payloads of the billing.* input topics (TM Forum names where they fit).

Contract checks only: types, formats, bounds and which fields an action needs. Business rules
(CP3.SANITY durations, CP2.PUBLISHED dates, ...) belong to the services, which must answer them
with decisions or reasoned dead letters rather than have the contract hide them.
"""
from __future__ import annotations

from .fields import (
    Bool,
    Choice,
    ClockTime,
    Const,
    Id,
    Int,
    ListOf,
    MinorUnits,
    Money,
    Name,
    Object,
    PhoneNumber,
    StrictSchema,
    Text,
    Timestamp,
    When,
)

USAGE_TYPES = ("voice", "sms", "data")
DESTINATION_CLASSES = ("local", "domestic", "international", "roaming")


class CdrPayload(StrictSchema):
    """billing.cdr.v1: one call detail record (TMF635 Usage), online or offline collected."""

    usageId = Id("Id of this usage record.")
    switchId = Id("Switch (or mediation source) that produced the CDR.")
    originId = Id("The switch's own id for the CDR; (switchId, originId) identifies it (CP3.DEDUP).")
    sequenceNumber = Int("Per-switch sequence number, used to find gaps (CP3.SEQUENCE_GAP).", minimum=0)
    accountId = Id("Billing account charged.")
    callingNumber = PhoneNumber("Calling party, digits with optional leading +.")
    calledNumber = PhoneNumber("Called party, digits with optional leading +.")
    usageType = Choice(USAGE_TYPES)
    destinationClass = Choice(DESTINATION_CLASSES)
    startDateTime = Timestamp("Start of the call or session: the business time used for rating.")
    endDateTime = Timestamp()
    durationSeconds = Int(
        "Duration as reported by the switch. Any integer is a valid contract value: "
        "negative or absurd durations are rejected by the service under CP3.SANITY."
    )
    volumeBytes = Int("Data volume for usageType=data.", minimum=0, optional=True)
    collection = Choice(("online", "offline"), "online: near real time; offline: from switch files.")
    areaCode = Id("Telephone area code of the originating area, e.g. 020.", optional=True, max_length=16)
    province = Name("Province of the originating area.", optional=True)


class TimeBandSchema(StrictSchema):
    """A time-of-day band with its own per-minute rate (local wall-clock time)."""

    startTime = ClockTime("Band start, HH:MM local time.")
    endTime = ClockTime("Band end, HH:MM local time; 24:00 allowed. May be before startTime (wraps midnight).", end=True)
    ratePerMinuteMinor = MinorUnits("Rate inside the band, fen per minute (per unit for sms/data).")


class TariffRateSchema(StrictSchema):
    """Price of one usage type to one destination class."""

    usageType = Choice(USAGE_TYPES)
    destinationClass = Choice(DESTINATION_CLASSES)
    ratePerMinuteMinor = MinorUnits("Fen per minute for voice; per unit (message, MB) for sms/data.")
    incrementSeconds = Int("Billing increment in seconds (60 = per started minute).", minimum=1, maximum=3600)
    connectFeeMinor = MinorUnits("Fee per call set-up, fen.")
    capMinor = MinorUnits("Maximum charge per call, fen; absent = no cap.", optional=True)
    timeBands = ListOf(Object(TimeBandSchema), "Time-of-day overrides of ratePerMinuteMinor.",
                       max_items=48, optional=True)


class TariffPayload(StrictSchema):
    """billing.tariff.v1: a published tariff version (CP2)."""

    tariffId = Id()
    version = Int("Version number of this tariff, from 1.", minimum=1)
    name = Name("Tariff name as published.", max_length=200)
    publishedAt = Timestamp("When the version was published (regulation art. 30).")
    effectiveFrom = Timestamp("When the version starts to apply (CP2.EFFECTIVE_DATING).")
    replacesVersion = Int("Version this one replaces; absent for a first version.", minimum=1, optional=True)
    approvalRef = Name("Approval reference; needed for an increase (CP2.INCREASE_NEEDS_APPROVAL).", optional=True)
    filingRef = Name("Filing reference (备案号); needed for an increase.", optional=True)
    freeAllowanceSeconds = Int("Free voice seconds per bill cycle.", minimum=0, load_default=0)
    rates = ListOf(Object(TariffRateSchema), min_items=1, max_items=200)


CUSTOMER_FIELDS = (
    "tariffPlan",
    "billingAccountOwner",
    "creditLevel",
    "customerTier",
    "importantFlag",
    "billDelivery",
    "paymentMethod",
    "msisdnOwnership",
)


class CustomerChangePayload(StrictSchema):
    """billing.customer.v1: a request to change a billing-relevant customer field (CP1)."""

    requestId = Id()
    accountId = Id()
    field = Choice(CUSTOMER_FIELDS, "Billing-relevant field to change (CP1.BILLING_FIELDS).")
    oldValue = Text("Value the requester believes is current; null when unset (CP1.STALE_WRITE).",
                    required=True, allow_none=True, min_length=0)
    newValue = Text("Requested value.", min_length=0)
    operatorId = Id("Operator who made the request.")
    operatorRole = Id("Role the operator acts in (CP1.AUTHORIZED).")
    approverId = Id("Second approver (CP1.FOUR_EYES).", optional=True)
    channel = Id("Channel the request came through, e.g. counter, app, hotline.")
    reason = Text()
    requestedEffectiveFrom = Timestamp("Requested effective time; never earlier than acceptance.", optional=True)


class ApprovalSchema(StrictSchema):
    """An approval of a planned work by an authority."""

    authority = Choice(("provincial", "groupHq", "regulator"))
    reference = Name("Approval document reference.", max_length=128)


class NoticeSchema(StrictSchema):
    """A notice of a planned work sent to affected customers (CP5.NOTICE_72H)."""

    channel = Choice(("newsMedia", "registeredLetter", "voicePrompt", "communityNotice"))
    sentAt = Timestamp()


class CutoverPayload(StrictSchema):
    """billing.cutover.v1: an engineering cutover or software upgrade (CP5), planned or its outage."""

    conditional_required = (
        When("action", ("outageReported",), ("actualOutageStart", "actualOutageEnd")),
    )

    workId = Id()
    action = Choice(("planned", "outageReported"))
    workKind = Choice(("cutover", "softwareUpgrade"))
    provinces = ListOf(Name(), "Provinces affected.", min_items=1, max_items=64)
    areas = ListOf(Name(), "Areas (cities, districts or area codes) affected.")
    switchIds = ListOf(Id(), "Switches whose CDRs fall in the window (CP5.WINDOW_CDRS).")
    plannedStart = Timestamp()
    plannedEnd = Timestamp()
    expectedImpactHours = Int("Expected customer impact in whole hours.", minimum=0)
    affectsImportantCustomers = Bool("Any important/VIP customer affected (CP5.LONG_OR_VIP).")
    approvals = ListOf(Object(ApprovalSchema), max_items=16)
    notices = ListOf(Object(NoticeSchema), max_items=64)
    affectedAccountIds = ListOf(Id(), "Accounts affected; a bigger work is sent as several events.",
                                max_items=10_000)
    actualOutageStart = Timestamp("Required when action is outageReported.", optional=True)
    actualOutageEnd = Timestamp("Required when action is outageReported.", optional=True)


class BillingPeriodSchema(StrictSchema):
    """The bill cycle a bill covers."""

    startDateTime = Timestamp()
    endDateTime = Timestamp()


class BillCustomerSchema(StrictSchema):
    """The customer standing that dunning and CP4 depend on, as of the bill."""

    creditLevel = Choice(("A", "B", "C", "D", "E"), "Credit level, A best.")
    customerTier = Choice(("diamond", "gold", "silver", "standard"), "钻石/金卡/银卡/普通.")
    important = Bool("Important/VIP customer (CP4.IMPORTANT).")
    accountManagerId = Id("Assigned account manager, if any.", optional=True)


class BillPayload(StrictSchema):
    """billing.bill.v1: a customer bill (TMF678 CustomerBill)."""

    billId = Id()
    billNo = Id("Bill number printed on the bill.")
    accountId = Id()
    billingPeriod = Object(BillingPeriodSchema)
    billDate = Timestamp()
    paymentDueDate = Timestamp("Agreed due date; arrears start after it (DN.OCCURRENCE).")
    amountDue = Money()
    state = Choice(("new", "onHold", "validated", "sent", "partiallyPaid", "settled"))
    customer = Object(BillCustomerSchema)


class PaymentPayload(StrictSchema):
    """billing.payment.v1: a payment or its reversal (TMF676 Payment)."""

    conditional_required = (When("status", ("reversed",), ("reversesPaymentId",)),)

    paymentId = Id()
    accountId = Id()
    billId = Id("Bill paid, if the payment is allocated to one.", optional=True)
    amount = Money()
    paymentDate = Timestamp()
    status = Choice(("received", "pending", "reversed"))
    reversesPaymentId = Id("Payment this one reverses; required when status is reversed.", optional=True)
    channel = Id("Payment channel, e.g. counter, bankTransfer, alipay, wechatPay.")


class RestorationPayload(StrictSchema):
    """billing.restoration.v1: the network reports that a suspended line's service is back
    (CP4.RESTORE_48H: restoration must complete within 48 h of the arrears being paid)."""

    accountId = Id()
    restorationOrderId = Id("decisionId of the guard's RestorationOrdered this completes, if known.", optional=True)
    completedAt = Timestamp("When service was actually restored.")
    networkSystem = Id("System that performed the restoration, e.g. hlr-nj-02.")


class SuspensionApprovalPayload(StrictSchema):
    """billing.approval.v1: an account manager's answer to a suspension request for an important
    customer (CP4.IMPORTANT: diamond/gold or VIP). The guard holds the request until this answer
    arrives or the policy's timeout passes (a timeout counts as a refusal and escalates)."""

    approvalId = Id()
    requestId = Id("requestId of the guard's SuspensionAwaitingApproval this answers.")
    accountId = Id()
    approverId = Id("Who answered: the request's account manager (accountManagerId of the "
                    "SuspensionAwaitingApproval), unless approverRole is one the guard's policy lets answer "
                    "for any customer (anyAccountApproverRoles); otherwise APPROVER_NOT_ACCOUNT_MANAGER.")
    approverRole = Id("Role of the approver; the guard's policy names the roles that may answer.")
    verdict = Choice(("approve", "refuse"))
    reason = Text("Why the approver approved or refused.")
    decidedAt = Timestamp("When the approver answered. An answer decided after approvalDueAt is rejected "
                          "(APPROVAL_AFTER_TIMEOUT), however early it is delivered.")


DISPUTE_ACTIONS = ("open", "transfer", "acceptTransfer", "reply", "resolve", "close", "cancel")


class DisputePayload(StrictSchema):
    """billing.dispute.v1: one action on a bill dispute (TMF621 TroubleTicket, ticketType Bill Dispute)."""

    conditional_required = (
        When("action", ("open",), ("billId", "disputedItems", "disputedAmount")),
        When("action", ("transfer",), ("toOwnerId",)),
        When("action", ("resolve",), ("resolution",)),
        When("resolution", ("partiallyUpheld",), ("creditAmount",)),
    )

    ticketId = Id()
    ticketType = Const("Bill Dispute")
    action = Choice(DISPUTE_ACTIONS)
    accountId = Id()
    billId = Id("Disputed bill; required on open.", optional=True)
    disputedItems = ListOf(Id(), "CDR ids or bill-line ids disputed; required on open.",
                           min_items=1, optional=True)
    disputedAmount = Money("Amount disputed and put on hold (D.HOLD); required on open.", optional=True)
    reason = Text("Reason given for this action.")
    channel = Id("Channel the action came through.")
    actorId = Id("Who performed the action; on open, the first receiver, who becomes owner (D.OPEN).")
    toOwnerId = Id("Proposed new owner; required on transfer.", optional=True)
    resolution = Choice(("upheld", "partiallyUpheld", "rejected"), "Required on resolve.", optional=True)
    creditAmount = Money("Credit granted; required when resolution is partiallyUpheld.", optional=True)
    replyText = Text("Answer given to the customer (D.REPLY_15D).", optional=True)
