"""The cards domain (SPEC.md section 4): pure rules, no I/O, no wall clock."""
