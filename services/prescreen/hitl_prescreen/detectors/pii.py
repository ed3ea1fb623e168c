"""Personal data in the output: emails, phones, payment cards, IBANs, US SSNs, IP addresses.

Every numeric finding is validated before it becomes a flag (Luhn plus card brand,
IBAN check digits and country format, SSN area/group/serial rules, phone numbering
plans of the configured regions), so order numbers, wrong-check IBANs, version strings,
git SHAs and UUIDs stay quiet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

from hitl_prescreen.detectors.base import ScreenContext, make_flag, mask
from hitl_prescreen.detectors.national_ids import national_ids
from hitl_shared.events import Flag, LLMOutput, Severity

CATEGORIES = ("payment_card", "iban", "us_ssn", "national_id", "email", "ip_address", "phone")


class PiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    categories: tuple[str, ...] = CATEGORIES
    phone_regions: tuple[str, ...] = Field(
        default=(
            "US",
            "GB",
            "DE",
            "FR",
            "IN",
            "BR",
            "JP",
            "AU",
            "CA",
            "ES",
            "IT",
            "NL",
            "MX",
            "CN",
            "SG",
            "ZA",
        ),
        description="Regions tried, in order, for numbers written without a country code",
    )
    flag_private_ips: bool = True


# Patterns start with a literal character class and check the character before it with a
# lookbehind placed after that first character: same matches, but re can skip ahead to
# candidate characters instead of trying every position (measured 3-5x faster).
_CARD = re.compile(r"\d(?<![\w-]\d)(?:[ -]?\d){11,18}(?![\w-])", re.ASCII)
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){10,32}(?![A-Za-z0-9])")
_SSN = re.compile(r"\d(?<![\w-]\d)\d{2}([- ])\d{2}\1\d{4}(?![\w-])", re.ASCII)
_SSN_BARE = re.compile(r"\d(?<![\w-]\d)\d{8}(?![\w-])", re.ASCII)
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security|soc\. sec\.|tin)\b")
_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])",
    re.ASCII,
)
_NOT_DOMAIN = re.compile(r"[^A-Za-z0-9.-]")
_NOT_EMAIL_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "js", "css", "py"})
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\.?\d)(?!\w)", re.ASCII)
_IPV6 = re.compile(
    r"(?<![\w:])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?![\w:])",
    re.ASCII,
)
_VERSION_CONTEXT = re.compile(r"(?i)(?:\bv|version|build|release|ver\.?|firmware)\s*$")
# One class for the first character (an alternation of three would defeat the skip-ahead);
# a lookbehind on that character then picks the rest of its alternative: "(+(1", "+(1", "1".
_PHONE = re.compile(
    r"[(+\d](?<![\w+.,/-][(+\d])(?:(?<=\()\+?\(?\d|(?<=\+)\(?\d|(?<=\d))"
    r"[\d \-.()/]{5,22}\d(?![\w/]|[.,]\d)",
    re.ASCII,
)
_ID_CONTEXT = re.compile(
    r"(?i)\b(?:order|tracking|invoice|reference|ref|booking|confirmation|ticket|case|serial|"
    r"sku|isbn|transaction|patent|parcel|shipment|meeting|conference|webinar|room|part|"
    r"model|zip|postal|postcode|population|hs)"
    r"(?:\s+(?:number|no\.?|#|id|code|pin))?\W{0,3}$"
    r"|\b(?:id|pin|code|passcode)\W{0,3}$"
)
_NOT_PHONE = re.compile(
    r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"  # ISO date
    r"|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}"  # day-month-year date
    r"|\d{3}-\d{2}-\d{4}"  # SSN shape (validated as SSN, never as phone)
    r"|(?:19|20)\d{2} ?[-/] ?(?:19|20)\d{2}"  # a range of years
    r"|\d{5}-\d{4}"  # US ZIP+4
    r"|\d(?: \d{3}){2,}"  # a count grouped by thousands: 8 336 817
)
# Phones written with dots: US 415.555.2671, French 06.12.34.56.78, 0412.345.678.
_DOTTED_PHONE = re.compile(
    r"(?:\+\d{1,3}[ .])?(?:\(?\d{3}\)?\.\d{3}\.\d{4}|\d{2}(?:\.\d{2}){4}|\d{3,4}\.\d{3}\.\d{3,4})"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)(?:phone|mobile|cell|call|tel|telephone|fax|whats\s?app|sms|text|contact|reach|"
    r"dial|nummer|numéro|teléfono|電話|电话|手机|拨打|联系|携帯|ring)\W{0,3}(?:\w+\W{1,3}){0,4}$"
)


@dataclass(frozen=True)
class _Hit:
    category: str
    start: int
    end: int
    severity: Severity
    score: float
    explanation: str


MAX_CARD_GROUPS = 6  # 4-4-4-4-3 is the most groups a card is written in


def card_brand(digits: str) -> str | None:
    """The card network a number belongs to, by issuer prefix and length, or None."""
    n = len(digits)
    p2, p4, p6 = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "Visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "Mastercard"
    if p2 in (34, 37) and n == 15:
        return "American Express"
    if (p4 == 6011 or 644 <= int(digits[:3]) <= 649 or p2 == 65) and 16 <= n <= 19:
        return "Discover"
    if 622126 <= p6 <= 622925 and 16 <= n <= 19:
        return "Discover"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "JCB"
    if (300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19:
        return "Diners Club"
    if p2 == 62 and 16 <= n <= 19:
        return "UnionPay"
    if (p2 == 50 or 56 <= p2 <= 69) and 12 <= n <= 19:
        return "Maestro"
    return None


# Where the scans can match. Most texts hold no run of six digits and no word starting with
# two capitals: they skip most scans, and the others scan a few dozen characters. Scanning
# finditer(text, start, end) finds what a scan of the whole text finds inside: lookbehinds
# still see the characters before ``start``, and only a match reaching ``end`` could differ.
Window = tuple[int, int]

# A digit, found fast (the class is a superset of \d that re can skip ahead on: no decimal
# digit lies between U+007F and U+0660; the lookbehind keeps exactly \d), then five more in
# its run of digits and " .-/()" (the possessive "*+" only spares backtracking: a separator
# is never a digit), or a dotted quad.
_DIGIT_RUN = re.compile(r"[0-9\u0660-\U0010ffff](?<=\d)(?:(?:[ .\-/()]*+\d){5,}|\d*\.\d+\.\d+\.\d)")
# Two capitals starting a word, as IBANs and codici fiscali do, followed by what theirs are:
# two digits (an IBAN's check digits) or four more capitals (a codice fiscale has six).
_CAPITALS = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z](?=\d\d|[A-Z]{4})")
DIGIT_MARGIN = 8  # see digit_window
CAPITALS_MARGIN = 70  # see capitals_window
NO_WINDOW: Window = (0, 0)


def _window(regex: re.Pattern[str], text: str, before: int, after: int) -> Window:
    """From ``before`` characters ahead of the first match to ``after`` past the last."""
    first = last = -1
    for m in regex.finditer(text):
        if first < 0:
            first = m.start()
        last = m.end()
    if first < 0:
        return NO_WINDOW
    return max(0, first - before), min(len(text), last + after)


def digit_window(text: str) -> Window:
    """Where the cards, SSNs, phones, IPv4 addresses and most national ids of ``text`` lie.

    Each writes its digits in one run of digits and " .-/()": cards 12 or more, SSNs 9,
    phones 7 or more (fewer fail _phone_number), national ids of a ``digits`` scheme 6 or
    more, IPv4 addresses a dotted quad. Among the runs _DIGIT_RUN finds, one starts at or
    before such a number's first digit and one reaches its last digit (or the first of an
    IPv4's last group). A number starts at most 3 characters before its first digit ("AB 12
    34 56 C", "X-1234567L", "(+(1)") and ends at most 2 after its last ("-L", " C",
    "1.2.3.456"), where a lookahead reads 2 more: a margin of 8 holds all of it.
    """
    return _window(_DIGIT_RUN, text, DIGIT_MARGIN, DIGIT_MARGIN)


def capitals_window(text: str) -> Window:
    """Where the IBANs and codici fiscali of ``text`` lie.

    Both start with two capitals that _CAPITALS finds (it finds every such start: two are
    never adjacent, and a match is the pair alone, what its lookahead reads after it left
    to the next search); an IBAN is at most 68 characters long, a codice fiscale 16, and
    their lookahead reads one more.
    """
    return _window(_CAPITALS, text, 0, CAPITALS_MARGIN)


# Both windows from one scan, finding exactly what _DIGIT_RUN and _CAPITALS find, in 60 % of
# the time of the two scans:
# * Neither can start inside a match of the other (a digit run holds no capital, two
#   capitals no digit: what follows them is only looked at), so neither hides a match of
#   the other.
# * The cheapest test of a run comes first: both forms of a run go on for five more
#   characters of digits and " .-/()", which most digits and other characters fail.
# * A run never starts at a digit right after another (``(?<!\d\d)``): a match from there
#   extends to one from the digit before, so that one, if tried, matched instead; and if a
#   match ended between them, it was a dotted quad in a run of at most five digits (with
#   six, the first alternative matches), which leaves at most one, too few for another.
#   Without this, every digit of a long number is tried.
# * The lookbehinds of the capitals come after their second capital, which most fail.
# (Adding "@" and ":" to this scan, for the other windows, made it slower than the
# searches it replaced.)
_LANDMARKS = re.compile(
    r"[0-9A-Z\u0660-\U0010ffff]"
    r"(?:(?=[\d .\-/()]{5})(?<=\d)(?<!\d\d)(?:(?:[ .\-/()]*+\d){5,}|\d*\.\d+\.\d+\.\d)"
    r"|(?P<capitals>[A-Z])(?<=[A-Z][A-Z])(?<![A-Za-z0-9][A-Z][A-Z])(?=\d\d|[A-Z]{4}))"
)


def windows(text: str) -> tuple[Window, Window]:
    """``(digit_window(text), capitals_window(text))``, from one scan."""
    first_run = last_run = first_capitals = last_capitals = -1
    for m in _LANDMARKS.finditer(text):
        if m.lastgroup is None:  # a digit run
            if first_run < 0:
                first_run = m.start()
            last_run = m.end()
        else:
            if first_capitals < 0:
                first_capitals = m.start()
            last_capitals = m.end()
    digits = capitals = NO_WINDOW
    if first_run >= 0:
        digits = max(0, first_run - DIGIT_MARGIN), min(len(text), last_run + DIGIT_MARGIN)
    if first_capitals >= 0:
        capitals = first_capitals, min(len(text), last_capitals + CAPITALS_MARGIN)
    return digits, capitals


_GROUP = re.compile(r"[^ \-]+")
_NON_DIGIT = re.compile(r"\D")
_GROUPED = re.compile(r"\d[ \-.)/]+\d")


def _groups(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Maximal runs of non-separator characters inside [start, end)."""
    return [(m.start(), m.end()) for m in _GROUP.finditer(text[start:end])]


def _cards(text: str, window: Window) -> Iterator[_Hit]:
    for m in _CARD.finditer(text, *window):
        groups = _groups(text, m.start(), m.end())
        if len(groups) > MAX_CARD_GROUPS:
            groups = [(0, m.end() - m.start())]  # "1 2 3 4 …" is no card layout: whole run only
        found = False
        # Longest run of groups first: two numbers side by side must not hide a card.
        for size in range(len(groups), 0, -1):
            for first in range(len(groups) - size + 1):
                a = m.start() + groups[first][0]
                b = m.start() + groups[first + size - 1][1]
                digits = _NON_DIGIT.sub("", text[a:b])
                if not 12 <= len(digits) <= 19 or not luhn.is_valid(digits):
                    continue
                brand = card_brand(digits)
                if brand is None:
                    continue
                yield _Hit(
                    "payment_card",
                    a,
                    b,
                    "critical",
                    0.97,
                    f"{brand} card number {mask(digits)} (Luhn-valid)",
                )
                found = True
                break
            if found:
                break


def _ibans(text: str, window: Window) -> Iterator[_Hit]:
    for m in _IBAN.finditer(text, *window):
        ends = [m.start() + g[1] for g in _groups(text, m.start(), m.end())]
        chars = [i + 1 for i in range(m.start() + 4, m.end()) if text[i] != " "]
        for end in sorted(set(ends + chars), reverse=True):
            compact = text[m.start() : end].replace(" ", "")
            # ISO 13616 check digits and the country's BBAN layout; national check digits
            # are not required (a mistyped but well-formed IBAN is still personal data).
            if len(compact) >= 15 and stdnum_iban.is_valid(compact, check_country=False):
                yield _Hit(
                    "iban",
                    m.start(),
                    end,
                    "high",
                    0.96,
                    f"IBAN {compact[:2]}…{compact[-4:]} (check digits valid)",
                )
                break


def _ssns(text: str, window: Window) -> Iterator[_Hit]:
    for m in _SSN.finditer(text, *window):
        if stdnum_ssn.is_valid(m.group().replace(" ", "-")):
            yield _Hit("us_ssn", m.start(), m.end(), "critical", 0.95, "US Social Security number")
    for m in _SSN_BARE.finditer(text, *window):
        before = text[max(0, m.start() - 40) : m.start()]
        if _SSN_CONTEXT.search(before) and stdnum_ssn.is_valid(m.group()):
            yield _Hit("us_ssn", m.start(), m.end(), "critical", 0.9, "US Social Security number")


def _in_url(text: str, start: int) -> bool:
    """Whether ``start`` lies inside a URL (``scheme://user:secret@host`` is no email)."""
    token_start = max(
        text.rfind(" ", 0, start), text.rfind("\n", 0, start), text.rfind("`", 0, start)
    )
    return "://" in text[token_start + 1 : start]


def _national_ids(text: str, digits: Window, capitals: Window) -> Iterator[_Hit]:
    for start, end, label in national_ids(text, digits, capitals):
        yield _Hit("national_id", start, end, "critical", 0.93, f"{label} (validated)")


def email_window(text: str) -> Window:
    """Where the emails of ``text`` lie: (0, 0) without an "@".

    Every email holds one "@": it starts at most 64 characters before it and ends in the
    run of domain characters after it, where its lookahead reads one more.
    """
    first_at = text.find("@")
    if first_at < 0:
        return NO_WINDOW
    after_domain = _NOT_DOMAIN.search(text, text.rfind("@") + 1)
    return max(0, first_at - 64), after_domain.start() + 1 if after_domain else len(text)


def _emails(text: str, window: Window) -> Iterator[_Hit]:
    for m in _EMAIL.finditer(text, *window):
        tld = m.group().rsplit(".", 1)[-1].lower()
        if tld in _NOT_EMAIL_TLDS or _in_url(text, m.start()):
            continue
        yield _Hit("email", m.start(), m.end(), "high", 0.93, "Email address")


def may_hold_ipv6(text: str) -> bool:
    """Whether ``text`` has what every IPv6 address _ips takes has: "::" or seven colons."""
    if text.find(":", text.find(":") + 1) < 0:
        return False  # fewer than two colons (most texts): two finds tell faster than a count
    return "::" in text or text.count(":") >= 7


def ipv6_window(text: str) -> Window:
    """Where the IPv6 addresses of ``text`` lie: (0, 0) unless it may hold one.

    _IPV6 matches only where its lookahead finds a colon within four characters; a match
    ends at most four past its last colon, and the scan reads one more.
    """
    if not may_hold_ipv6(text):
        return NO_WINDOW
    return max(0, text.find(":") - 4), min(len(text), text.rfind(":") + 6)


def _ips(text: str, config: PiiConfig, window: Window, ipv6: Window) -> Iterator[_Hit]:
    """IP addresses: IPv4 in ``window``, IPv6 in ``ipv6``."""
    for m in _IPV4.finditer(text, *window):
        if _VERSION_CONTEXT.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
                m.group()
            )
        except ValueError:
            continue
        hit = _ip_hit(address, m.start(), m.end(), config)
        if hit:
            yield hit
    for m in _IPV6.finditer(text, *ipv6):
        candidate = m.group()
        if "::" not in candidate and candidate.count(":") != 7:
            continue
        if candidate.endswith("::"):
            continue  # a prefix ("fe80::"), not a host address
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        hit = _ip_hit(address, m.start(), m.end(), config)
        if hit:
            yield hit


def _ip_hit(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, start: int, end: int, config: PiiConfig
) -> _Hit | None:
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        return None
    if str(address) in _PUBLIC_INFRASTRUCTURE:
        return None
    if address.is_private and not address.is_global and not _is_documentation(address):
        if not config.flag_private_ips:
            return None
        return _Hit("ip_address", start, end, "low", 0.6, f"Private IP address {address}")
    return _Hit("ip_address", start, end, "medium", 0.85, f"IP address {address}")


# Well-known public resolvers and broadcast: infrastructure, never a person's address.
_PUBLIC_INFRASTRUCTURE = frozenset(
    {"255.255.255.255", "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "208.67.222.222"}
)
_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def _is_documentation(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Documentation ranges stand in for real addresses in text; flag them like public ones."""
    return any(address.version == n.version and address in n for n in _DOC_NETS)


_DECIMAL = re.compile(r"\d")
_SINGLE_DIGIT_GROUP = re.compile(r"(?<!\d)\d(?!\d)")
_NANP_SHAPE = re.compile(r"(?:\+?1[ .-]?)?\(\d{3}\) ?\d{3}-\d{4}")


@lru_cache(maxsize=4096)
def _phone_number(
    candidate: str, regions: tuple[str, ...], *, lenient: bool = False
) -> phonenumbers.PhoneNumber | None:
    """The number if valid in a region (or merely possible there, when ``lenient``)."""
    digits = _NON_DIGIT.sub("", candidate)
    if not 7 <= len(digits) <= 15:
        return None
    stripped = candidate.lstrip("(")
    if stripped.startswith(("+", "00")):
        if stripped.startswith("00"):
            international = "+" + stripped[2:]
        else:
            international = stripped.replace(")", " ", 1) if "(" not in stripped else stripped
        try:
            number = phonenumbers.parse(international, None)
        except phonenumbers.NumberParseException:
            return None
        return number if phonenumbers.is_valid_number(number) else None
    possible = None
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
        if lenient and possible is None and phonenumbers.is_possible_number(number):
            possible = number
    return possible


def _warm_phone_metadata(regions: tuple[str, ...]) -> None:
    """Load each region's numbering plan now, not on the first item that needs it."""
    for region in regions:
        example = phonenumbers.example_number(region)
        if example is not None:
            phonenumbers.is_valid_number(example)
            text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            _phone_number.__wrapped__(text, regions)


def _looks_formatted(candidate: str) -> bool:
    """Grouped like a phone number (separators or a country prefix), not a bare id."""
    return candidate.startswith(("+", "00", "(")) or bool(_GROUPED.search(candidate))


def _phones(
    text: str, config: PiiConfig, taken: list[tuple[int, int]], window: Window
) -> Iterator[_Hit]:
    """Phone numbers outside spans already taken by more specific findings."""
    for m in _PHONE.finditer(text, *window):
        if any(m.start() < b and a < m.end() for a, b in taken):
            continue  # part of a card, IBAN, SSN or IP address found before
        candidate = m.group()
        if len(_SINGLE_DIGIT_GROUP.findall(candidate)) > 2:
            continue  # "1 2 3 4 5 6 7": a list of digits, not a phone layout
        # A closing parenthesis may end the match only when it opened inside it.
        if candidate.count("(") < candidate.count(")"):
            continue
        before = text[max(0, m.start() - 48) : m.start()]
        if not _looks_formatted(candidate) and not _PHONE_CONTEXT.search(before):
            continue
        if not candidate.lstrip("(").startswith(("+", "00")) and _ID_CONTEXT.search(before):
            continue  # "tracking number 435583894779" is an id, not a phone
        if _NOT_PHONE.fullmatch(candidate) or _VERSION_CONTEXT.search(before):
            continue
        if "." in candidate and not _DOTTED_PHONE.fullmatch(candidate):
            continue
        # Fictional-range numbers ("(312) 555-0122") fail validation but are written
        # exactly like real ones; the unmistakable US shape is enough.
        number = _phone_number(
            candidate, config.phone_regions, lenient=bool(_NANP_SHAPE.fullmatch(candidate))
        )
        if number is None:
            continue
        region = phonenumbers.region_code_for_number(number) or "international"
        yield _Hit("phone", m.start(), m.end(), "high", 0.9, f"Phone number ({region})")


def _overlaps(hit: _Hit, taken: list[tuple[int, int]]) -> bool:
    return any(hit.start < b and a < hit.end for a, b in taken)


class PiiDetector:
    """Validated personal-data findings, most specific first, without overlaps."""

    name = "pii"

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        self.wanted = frozenset(self.config.categories)
        _warm_phone_metadata(self.config.phone_regions)

    def hits(self, text: str) -> list[_Hit]:
        taken: list[tuple[int, int]] = []
        digits, capitals = windows(text)
        # Producers that would only scan empty windows find nothing: they are left out.
        in_digits, in_capitals = digits != NO_WINDOW, capitals != NO_WINDOW
        emails, ipv6 = email_window(text), ipv6_window(text)
        producers: list[tuple[str, Iterator[_Hit]]] = []
        if in_digits:
            producers.append(("payment_card", _cards(text, digits)))
        if in_capitals:
            producers.append(("iban", _ibans(text, capitals)))
        if in_digits:
            producers.append(("us_ssn", _ssns(text, digits)))
        if in_digits or in_capitals:
            producers.append(("national_id", _national_ids(text, digits, capitals)))
        if emails != NO_WINDOW:
            producers.append(("email", _emails(text, emails)))
        if in_digits or ipv6 != NO_WINDOW:
            producers.append(("ip_address", _ips(text, self.config, digits, ipv6)))
        if in_digits:
            producers.append(("phone", _phones(text, self.config, taken, digits)))
        found: list[_Hit] = []
        for category, produced in producers:
            if category not in self.wanted:
                continue
            for hit in produced:
                if not _overlaps(hit, taken):
                    taken.append((hit.start, hit.end))
                    found.append(hit)
        return sorted(found, key=lambda h: h.start)

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        # Cheap exit: every category needs a digit or an '@'.
        text = output.output_text
        if (
            not _DECIMAL.search(text)  # a fast first look for str.isdigit characters
            and "@" not in text
            and ":" not in text
            and not any(ch.isdigit() for ch in text)
        ):
            return []
        return [
            make_flag(self.name, h.category, h.severity, h.score, h.start, h.end, h.explanation)
            for h in self.hits(text)
        ]
