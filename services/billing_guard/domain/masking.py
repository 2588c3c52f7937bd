"""Phone numbers in human-facing output (A.PRIVACY): keep the first 3 and last 4 digits."""


def mask_number(number: str | None) -> str | None:
    if not number:
        return number
    digits = number.lstrip("+")
    prefix = "+" if number.startswith("+") else ""
    if len(digits) <= 7:
        return prefix + "*" * len(digits)
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
