"""Pure harnesses that drive each service's decide/evolve the way the runtime does (streams,
envelopes, timers, refusals), and builders of their inputs: no broker, no database.

The unit tests use them to state the rules, the integration tests to build inputs, and the bench
to build a finance history of the right shape; so they live beside the code, not under tests/.
"""
