"""The policy schema of a service whose rules take no parameters yet: just a version."""
from marshmallow import RAISE, Schema, fields, validate


class VersionOnlyPolicySchema(Schema):
    class Meta:
        unknown = RAISE

    policyVersion = fields.String(required=True, validate=validate.Length(1, 64))
