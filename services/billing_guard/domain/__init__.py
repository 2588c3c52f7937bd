"""billing_guard's functional core: pure rules of SPEC.md sections 1 (checkpoints) and 2 (disputes).

decide.py sends each input to the rule family that decides it, evolve.py each stored decision to
the fold of its stream's state; schemas/decision_types/guard.py names every decision type the guard publishes.
One module per rule family otherwise (customer_data: CP1, tariff_changes: CP2, offline_billing:
CP3, suspension and vip_approval: CP4, planned_works: CP5, disputes: D.*).
"""
