"""Every decision type each service publishes, named once: the published contract's names.

Here rather than in each service, because other services and finance act on them (dunning on the
guard's dispute decisions, the guard on dunning's suspension requests, finance on all three) and
the services may not import each other; the payload schemas of schemas/decision_payloads are
keyed by the same names.
"""
