"""Tamper evidence beyond the database (issue 14): Merkle trees over each hash chain, signed
checkpoints of their heads published to Kafka, and inclusion proofs an auditor checks offline."""
