"""Validated text fields of request bodies (members, sellers), as pydantic `Annotated` types, and
`CamelCaseBody`, the base of bodies whose JSON names are camelCase (cart, catalogue).

Each type accepts only a JSON string (strict: no number coercion), trims it, bounds its length
(the column's size), refuses control, format, private-use and unpaired-surrogate characters,
and allows only the characters its kind of value needs: person and shop names take letters of
any script (Hangul, Latin, ...), so `김민수` and `O'Brien` pass while `'; DROP TABLE x; --` does
not. Failures become 400 `VALIDATION_ERROR` naming the field (see `goodsdrop.http`).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

# The one shape of an id in the API (path, query or body): a positive integer in a string, no sign,
# no leading zero ("072" is refused everywhere, never merged into 72), at most 18 digits (a BIGINT).
ID_PATTERN = r"^[1-9][0-9]{0,17}$"
MAX_LINE_QUANTITY = 99  # the most units of one product in a cart line or an order line
IdText = Annotated[StrictStr, Field(pattern=ID_PATTERN, description="an id: a positive integer in a string, "
                                                                    "no leading zero")]
LineQuantity = Annotated[StrictInt, Field(ge=1, le=MAX_LINE_QUANTITY)]


def is_id(raw: str | None) -> bool:
    """Whether `raw` is an id as the API takes it (`ID_PATTERN`: "072" is not)."""
    return raw is not None and re.fullmatch(ID_PATTERN, raw) is not None

EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 128
PASSWORD_INPUT_MAX = 1024  # what a login attempt may send (the policy may change; old passwords still work)
NAME_MAX = 100
ADDRESS_MAX = 255
PHONE_MAX = 30
SHOP_NAME_MAX = 100

_EMAIL = re.compile(
    r"^(?=.{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_PHONE = re.compile(r"^\+?[0-9](?:[0-9 -]*[0-9])?$")
_REGISTRATION = re.compile(r"^(\d{3})-?(\d{2})-?(\d{5})$")
_REGISTRATION_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
_NEVER = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
# Letters and marks that render as nothing: with them (or with a format character, Cf: bidi
# overrides and isolates, zero-width spaces and joiners, BOM, soft hyphen) one name can pose as
# another that looks the same, or read backwards. Hangul fillers, the blank Braille pattern, the
# combining grapheme joiner, Khmer's inherent vowels and Mongolian's free variation selectors.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")


def check_visible(value: str) -> str:
    """`value` if it has no format character (bidi control, zero-width) and no invisible letter."""
    for char in value:
        if unicodedata.category(char) == "Cf" or char in INVISIBLE:
            raise ValueError(f"contains an invisible or text-direction character (U+{ord(char):04X})")
    return value


class CamelCaseBody(BaseModel):
    """A request body: JSON names are the camelCase of the snake_case fields; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _characters(value: str, *, digits: bool, punctuation: str) -> str:
    """`value` if every character is a letter, combining mark, space, allowed digit or punctuation."""
    check_visible(value)
    for char in value:
        category = unicodedata.category(char)
        if category in _NEVER:
            raise ValueError("contains a control or invalid character")
        if category[0] in "LM" or char == " " or char in punctuation or (digits and "0" <= char <= "9"):
            continue
        raise ValueError(f"contains a character that is not allowed: {char!r}")
    if "  " in value:
        raise ValueError("contains repeated spaces")
    return value


def _text(max_length: int, *, digits: bool, punctuation: str) -> Callable[[str], str]:
    def check(raw: str) -> str:
        value = raw.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return _characters(value, digits=digits, punctuation=punctuation)

    return check


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased; ASCII `local@domain.tld` only, at most 254 characters."""
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > EMAIL_MAX:
        raise ValueError(f"must be at most {EMAIL_MAX} characters")
    if not value.isascii() or not _EMAIL.match(value.lower()):  # ASCII before lower(): "\u212a".lower() is "k"
        raise ValueError("is not a valid email address")
    return value.lower()


def check_password(raw: str) -> str:
    """A new password: 8 to 128 characters (NFKC-normalised), any script, no control characters."""
    value = normalise_password(raw)
    if len(value) < PASSWORD_MIN:
        raise ValueError(f"must be at least {PASSWORD_MIN} characters")
    if len(value) > PASSWORD_MAX:
        raise ValueError(f"must be at most {PASSWORD_MAX} characters")
    return value


def normalise_password(raw: str) -> str:
    """NFKC form of a password (so the same password typed on another keyboard still matches)."""
    if any(unicodedata.category(char) in _NEVER for char in raw):
        raise ValueError("contains a control or invalid character")
    if len(raw) > PASSWORD_INPUT_MAX:
        raise ValueError(f"must be at most {PASSWORD_INPUT_MAX} characters")
    return unicodedata.normalize("NFKC", raw)


def check_given_password(raw: str) -> str:
    """A password as presented to be checked (login, current password): non-empty, normalised."""
    if not raw:
        raise ValueError("must not be empty")
    return normalise_password(raw)


def check_phone(raw: str) -> str:
    """A phone number: ASCII digits with optional leading `+`, spaces and dashes; 8 to 15 digits."""
    value = raw.strip()
    if len(value) > PHONE_MAX:
        raise ValueError(f"must be at most {PHONE_MAX} characters")
    if not value.isascii() or not _PHONE.match(value) or "  " in value or "--" in value:
        raise ValueError("must be digits with optional +, spaces and dashes")
    if not 8 <= sum(c.isdigit() for c in value) <= 15:
        raise ValueError("must have 8 to 15 digits")
    return value


def check_registration_number(raw: str) -> str:
    """A Korean business registration number (10 digits with a valid check digit) as `NNN-NN-NNNNN`."""
    value = raw.strip()
    match = _REGISTRATION.match(value) if value.isascii() else None
    if match is None:
        raise ValueError("must be 10 digits, written NNN-NN-NNNNN or NNNNNNNNNN")
    digits = "".join(match.groups())
    if registration_check_digit(digits[:9]) != int(digits[9]):
        raise ValueError("has a wrong check digit")
    return "-".join(match.groups())


def registration_check_digit(first_nine: str) -> int:
    """The 10th digit of a Korean business registration number from its first nine (National Tax Service rule)."""
    digits = [int(c) for c in first_nine]
    total = sum(d * w for d, w in zip(digits, _REGISTRATION_WEIGHTS, strict=True)) + digits[8] * 5 // 10
    return (10 - total % 10) % 10


check_person_name = _text(NAME_MAX, digits=False, punctuation="'-.·")
check_address = _text(ADDRESS_MAX, digits=True, punctuation=",.-#/()'&:")
check_shop_name = _text(SHOP_NAME_MAX, digits=True, punctuation="&.,'-!()·_+")

# What each type enforces is stated in the OpenAPI document (the `Field` below): the lengths bound the
# text as sent (the checks then bound it again once trimmed or normalised), and each pattern is a
# looser form of the check, so whatever the document calls invalid the server refuses.
_NAME_RULE = "letters of any script, combining marks, single spaces"
Email = Annotated[StrictStr, Field(
    min_length=1, max_length=EMAIL_MAX, pattern=r"^\s*[A-Za-z0-9_%+.-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}\s*$",
    description=f"an ASCII address local@domain.tld, at most {EMAIL_MAX} characters (local part at most 64: "
                "letters, digits, _ % + - and single dots); trimmed and lower-cased"),
    AfterValidator(normalise_email)]
NewPassword = Annotated[StrictStr, Field(
    min_length=PASSWORD_MIN, max_length=PASSWORD_MAX,
    description=f"{PASSWORD_MIN}-{PASSWORD_MAX} characters as sent and after NFKC normalisation; any script, "
                "no control or invalid characters"),
    AfterValidator(check_password)]
GivenPassword = Annotated[StrictStr, Field(
    min_length=1, max_length=PASSWORD_INPUT_MAX, description="the password (compared after NFKC normalisation)"),
    AfterValidator(check_given_password)]
PersonName = Annotated[StrictStr, Field(
    min_length=1, max_length=NAME_MAX,
    description=f"1-{NAME_MAX} characters: {_NAME_RULE} and ' - . · (no digits, no invisible or "
                "text-direction characters); trimmed"),
    AfterValidator(check_person_name)]
Address = Annotated[StrictStr, Field(
    min_length=1, max_length=ADDRESS_MAX,
    description=f"1-{ADDRESS_MAX} characters: {_NAME_RULE}, digits and , . - # / ( ) ' & :; trimmed"),
    AfterValidator(check_address)]
Phone = Annotated[StrictStr, Field(
    min_length=1, max_length=PHONE_MAX, pattern=r"^\s*\+?[0-9][0-9 -]*\s*$",
    description="8 to 15 ASCII digits with an optional leading +, single spaces or dashes between them"),
    AfterValidator(check_phone)]
ShopName = Annotated[StrictStr, Field(
    min_length=1, max_length=SHOP_NAME_MAX,
    description=f"1-{SHOP_NAME_MAX} characters: {_NAME_RULE}, digits and & . , ' - ! ( ) · _ +; trimmed"),
    AfterValidator(check_shop_name)]
RegistrationNumber = Annotated[StrictStr, Field(
    min_length=1, max_length=20, pattern=r"^\s*[0-9]{3}-?[0-9]{2}-?[0-9]{5}\s*$",
    description="a Korean business registration number, NNN-NN-NNNNN or NNNNNNNNNN, with a valid check digit"),
    AfterValidator(check_registration_number)]


# ------------------------------------------------------------------------------ the caller's network
IPV6_SUBSCRIBER_PREFIX = 64  # what one IPv6 subscriber (a home, a phone) is given: one key for all of it


def network_of(raw: object) -> str | None:
    """A source IP as it may become part of a Redis key: the canonical text of an IPv4 address, or
    the /64 network of an IPv6 one (`2001:db8:1:2::/64`; a caller picks freely inside their /64, so
    per-address limits would not hold). None for anything that is not an IP address.
    """
    if not isinstance(raw, str) or not 2 <= len(raw) <= 45:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(address)
