"""Prompt-injection and jailbreak echoes in the output.

Three signals, all heuristics (no trustworthy offline classifier exists for this):
the output repeats or announces an override ("ignoring my previous instructions"),
reveals its system prompt, or carries jailbreak markers (DAN, developer mode, PWNED);
and the output obeys an instruction planted in a retrieved document, seen as that
instruction's payload (a quoted phrase, a URL, an email) turning up in the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import compress
from typing import Any, ClassVar, NamedTuple

import numpy as np  # loaded with the profanity model anyway (scikit-learn needs it)
from pydantic import BaseModel, ConfigDict

from hitl_prescreen.detectors.base import ScreenContext, make_flag
from hitl_shared.events import Flag, LLMOutput, Severity


class InjectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    check_context_documents: bool = True


_I = re.IGNORECASE
# The lookahead on _OVERRIDE, _REVEAL and _MARKERS names every character a match can start
# with (each alternative's first, case-folded the same way; on _REVEAL a space only where a
# line starts, as its one alternative that may start with one is anchored there), so re
# tries the alternatives at those positions only: two to five times faster, same matches.
_OVERRIDE = re.compile(
    r"(?=[bcdfgioprs])"
    r"(?:\b(?:ignor(?:e|ing)|disregard(?:ing)?|forget(?:ting)?|overrid(?:e|ing)|bypass(?:ing)?)"
    r"\s+(?:all\s+|any\s+|my\s+|the\s+|your\s+|of\s+)*"
    r"(?:previous|prior|earlier|above|preceding|original|system|safety|initial)?\s*"
    r"(?:instructions?|prompts?|rules|guidelines|guidance|directives|restrictions|programming)\b"
    r"|\b(?:content\s+)?(?:polic(?:y|ies)|rules|guidelines|guidance|instructions|restrictions|"
    r"safeguards|filters)\s+(?:(?:have\s+been|has\s+been|are|is|were|was)\s+)?"
    r"(?:disregarded|ignored|overridden|bypassed|disabled|lifted)\b)",
    _I,
)
_REVEAL = re.compile(
    r"(?=[himty\"]|^\s)(?:\b(?:my|the)\s+(?:system\s+prompt|(?:initial|original|hidden|secret)\s+"
    r"(?:instructions|prompt))\s*(?:is|was|are|says|reads|follows)?\s*:"
    r"|\bhere\s+(?:is|are)\s+(?:my|the)\s+(?:full\s+|complete\s+|exact\s+)?"
    r"(?:system\s+prompt|instructions|initial\s+prompt|hidden\s+prompt)"
    r"|\bhere\s+is\s+everything\s+above(?:\s+the\s+line)?"
    r"|\bI\s+was\s+(?:instructed|told|programmed)\s+(?:to|not\s+to)\s+(?:never\s+)?"
    r"(?:reveal|disclose|share)\b"
    r"|^\s*\"?You\s+are\s+(?:an?|the)\s+[^.\n]{0,80}(?:assistant|bot|agent)\b"
    r"[^\n]{0,200}(?:do\s+not|never)\s+(?:disclose|reveal|share)\b[^\n]{0,40}\bprompt)",
    _I | re.MULTILINE,
)
_MARKERS = re.compile(
    r"(?=[\[dijw])(?:\[\s*(?:🔓\s*)?JAILBREAK\s*\]|\bDo\s+Anything\s+Now\b|"
    r"\bdeveloper\s+mode\s+(?:enabled|activated|output)\b|\bjailbr(?:oken|eak)\s+mode\b|"
    r"\bI\s+(?:have|am\s+now\s+free\s+of)\s+no\s+(?:restrictions|limits|filters)\b|"
    r"\bI\s+have\s+been\s+PWNED\b|"
    r"\bwithout\s+any\s+(?:ethical|moral)\s+(?:guidelines|restrictions|constraints)\b)",
    _I,
)
# Persona names are only markers in capitals ("DAN:", not "Dan:").
_PERSONAS = re.compile(r"\b(?:DAN\s*(?:[Mm]ode|:)|(?:AIM|STAN|DUDE)\s*:|PWNED)")
# Sentences in retrieved documents that address the model rather than the reader.
_PLANTED = re.compile(
    r"(?:ignore|disregard)\s+(?:all\s+|any\s+)?(?:previous|prior|above|other)\s+"
    r"|\b(?:AI|assistant|chatbot|language\s+model|LLM|model)s?\s*(?:reading\s+this\s*)?"
    r"(?:,\s*)?(?:must|should|shall|are\s+instructed\s+to|need\s+to)\b"
    r"|\b(?:when|if)\s+(?:summari[sz]ing|answering|responding)\b[^.]{0,80}\b(?:say|include|"
    r"tell|respond|reply|recommend|add|output|write)\b"
    r"|\b(?:system|assistant)\s*:\s|\bnew\s+instructions?\s*:",
    _I,
)
_ORDERED_CLAUSE = re.compile(
    r"\b(?:say|tell\s+(?:the\s+|all\s+)?(?:user|customer|reader|visitor)s?|respond\s+with|"
    r"reply\s+with|answer\s+with|include|write|output|recommend|inform\s+the\s+user)"
    r"\s+(?:that\s+)?([^.!?\n]{12,240})",
    _I,
)
_WORD = re.compile(r"\w+")
SHINGLE = 4
MIN_SHARED = 0.5
_SENTENCES = re.compile(r"(?:[^.!?\n]|[.!?](?=\S))+[.!?]?")  # "a.b" does not end one
_PAYLOAD = re.compile(
    r"[\"“«']([^\"”»']{4,160})[\"”»']"
    r"|(https?://[^\s\"'<>)]+)"
    r"|([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})",
)


class _Hints:
    """Substrings, one of which a text must contain for a regex to match: looking for them
    costs a fraction of the regex's scan. Hints that contain one of ``shared`` are only
    looked for when it is there (they cannot be otherwise), which saves scans. A text is
    searched as str or as UTF-8 bytes (see ``_hint_views``)."""

    def __init__(self, hints: tuple[str, ...], shared: tuple[str, ...] = ()) -> None:
        self.hints = hints
        groups = [(part, tuple(h for h in hints if part in h)) for part in shared]
        grouped = {h for _, group in groups for h in group}
        alone = tuple(h for h in hints if h not in grouped)
        self._forms: dict[type, tuple[Any, Any]] = {
            str: (alone, groups),
            bytes: (
                tuple(h.encode() for h in alone),
                [(p.encode(), tuple(h.encode() for h in g)) for p, g in groups],
            ),
        }

    def found_in(self, view: str | bytes) -> bool:
        """Whether ``view`` contains one of the hints."""
        alone, groups = self._forms[type(view)]
        for hint in alone:
            if hint in view:
                return True
        for part, group in groups:
            if part in view:
                for hint in group:
                    if hint in view:
                        return True
        return False


# Looked for in the text lower-cased, but for the personas.
_OVERRIDE_HINTS = _Hints(
    ("ignor", "disregard", "forget", "overrid", "bypass", "lifted", "disabled")
)
_REVEAL_HINTS = _Hints(
    (
        "prompt", "instruction", "everything above", "i was instructed", "i was told",
        "i was programmed",
    ),
    shared=("i was ", "instruct"),
)  # fmt: skip
_MARKER_HINTS = _Hints(
    (
        "jailbr", "anything now", "developer mode", "no restrictions", "no limits",
        "no filters", "pwned", "ethical", "moral",
    ),
    shared=("no ",),
)  # fmt: skip
# Capitals N, U and M are rare in answers (a memchr finds them or not): each persona is only
# looked for when its rarest letter is there.
_PERSONA_HINTS = _Hints(("DAN", "AIM", "STAN", "DUDE", "PWNED"), shared=("N", "U", "M"))
_LOWER_TO_ASCII = (b"\xc4\xb0", b"\xe2\x84\xaa")  # İ, K (Kelvin): lower-case to ASCII
_PLANTED_HINTS = (
    "ignore", "disregard", "must", "should", "shall", "instructed", "need to", "summari",
    "answering", "responding", "system", "assistant", "instruction",
)  # fmt: skip


# --- Runs of four bytes: one pass over a text instead of a search per phrase -------------
#
# A phrase is only in a text if each of its runs of four bytes is. So the runs of the text
# (seen lower-cased, each run of whitespace one space) are hashed into 4,096 buckets once,
# with numpy; a phrase with a run in an empty bucket is not there, and only the others (a
# few percent of texts have any) are looked for as before. Same answers as searching for
# every phrase, for about half the cost of those searches. Every ``Phrases`` (the hints
# here, the hedges of the confidence detector) is looked up in the same pass, which the
# cache keeps for the item.

# ASCII whitespace to a space, A-Z to a-z, all other bytes unchanged.
PLAIN = bytes(
    32 if b < 128 and chr(b).isspace() else b | 32 if 65 <= b <= 90 else b for b in range(256)
)
_GRAM_BITS = 12
_GOLDEN = np.uint32(0x9E3779B1)  # multiplicative hashing: the top bits of run * this
_GRAM_SHIFT = np.uint32(32 - _GRAM_BITS)
_RUN = np.dtype("<u4")


def _run_buckets(view: bytes) -> np.ndarray:
    """The bucket of each run of four consecutive bytes of ``view``."""
    if len(view) < 4:
        return np.zeros(0, np.uint32)
    runs = np.ndarray((len(view) - 3,), _RUN, view, 0, (1,))  # overlapping, one a byte
    buckets = np.multiply(runs, _GOLDEN, dtype=np.uint32)
    buckets >>= _GRAM_SHIFT
    return buckets


class Grams(NamedTuple):
    """A text's UTF-8, its plain view (``PLAIN``, then every run of spaces made one), and
    the phrases (of every ``Phrases``) none of whose runs is missing from the plain view:
    all those in it, and rarely others."""

    data: bytes
    plain: bytes
    candidates: frozenset[bytes]


@lru_cache(maxsize=16)  # shared by the injection and confidence detectors of one item
def text_grams(text: str) -> Grams | None:
    """The runs of a text mostly in ASCII; None for other text (searched as str)."""
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return None
    if 2 * len(data) > 3 * len(text):
        return None
    plain = data.translate(PLAIN)
    while b"  " in plain:
        plain = plain.replace(b"  ", b" ")
    counts = np.bincount(_run_buckets(plain), minlength=1 << _GRAM_BITS)
    phrases, buckets, starts = _lookup()
    fewest = np.minimum.reduceat(counts.take(buckets), starts)  # per phrase, its rarest run's
    return Grams(data, plain, frozenset(compress(phrases, fewest.tolist())))


class Phrases:
    """Fixed phrases (ASCII, lower case, four bytes or more) looked up by ``text_grams``."""

    registered: ClassVar[list[Phrases]] = []

    def __init__(self, phrases: Sequence[bytes]) -> None:
        if any(len(phrase) < 4 for phrase in phrases):
            raise ValueError("a phrase shorter than a run of four bytes cannot be looked up")
        self.phrases = tuple(phrases)
        Phrases.registered.append(self)
        _lookup.cache_clear()
        text_grams.cache_clear()  # (made without these)

    def candidates(self, grams: Grams) -> list[bytes]:
        """These phrases among the text's candidates."""
        if not grams.candidates:
            return []
        return [phrase for phrase in self.phrases if phrase in grams.candidates]


@lru_cache(maxsize=1)
def _lookup() -> tuple[tuple[bytes, ...], np.ndarray, np.ndarray]:
    """Every registered phrase, the buckets of their runs, and where each phrase's begin."""
    phrases = tuple(dict.fromkeys(p for group in Phrases.registered for p in group.phrases))
    buckets: list[int] = []
    starts: list[int] = []
    for phrase in phrases:
        starts.append(len(buckets))
        buckets.extend(_run_buckets(phrase).tolist())
    return phrases, np.array(buckets, np.intp), np.array(starts, np.intp)


_LOWER_PHRASES = Phrases(
    [h.encode() for hints in (_OVERRIDE_HINTS, _REVEAL_HINTS, _MARKER_HINTS) for h in hints.hints]
)


@lru_cache(maxsize=4096)
def planted_payloads(document: str) -> tuple[list[str], list[str]]:
    """What instruction-like sentences of a document ask for.

    Returns literal payloads (quoted phrases, URLs, emails) and ordered clauses ("tell the
    user that ..."), the latter matched loosely since the model rephrases pronouns.
    """
    payloads: list[str] = []
    clauses: list[str] = []
    lowered = document.lower()
    if not any(map(lowered.__contains__, _PLANTED_HINTS)):
        return payloads, clauses
    for sentence in _SENTENCES.finditer(document):
        if not _PLANTED.search(sentence.group()):
            continue
        for m in _PAYLOAD.finditer(sentence.group()):
            value = next(g for g in m.groups() if g).strip().rstrip(".,;:")
            if len(value) >= 4:
                payloads.append(value)
        clauses.extend(m.group(1) for m in _ORDERED_CLAUSE.finditer(sentence.group()))
    return payloads, clauses


@lru_cache(maxsize=4)  # one text, compared with every clause of its documents
def _lowered_words(text: str) -> list[str]:
    return list(map(str.lower, _WORD.findall(text)))


def clause_echo(clause: str, text: str) -> tuple[int, int] | None:
    """Span of ``text`` that repeats most of ``clause`` (shared word 4-grams), if any."""
    wanted = [w.lower() for w in _WORD.findall(clause)]
    grams = {tuple(wanted[i : i + SHINGLE]) for i in range(len(wanted) - SHINGLE + 1)}
    if not grams:
        return None
    lowered = _lowered_words(text)
    # The 4-grams the text shares with the clause, counted before their places are sought
    # (the common answer is: too few).
    shingles = zip(*(lowered[i:] for i in range(SHINGLE)), strict=False)
    if len(grams.intersection(shingles)) < MIN_SHARED * len(grams):
        return None
    hits = [
        (i, gram)
        for i, gram in enumerate(zip(*(lowered[i:] for i in range(SHINGLE)), strict=False))
        if gram in grams
    ]
    words = list(_WORD.finditer(text))  # spans, only for an echo
    return words[hits[0][0]].start(), words[hits[-1][0] + SHINGLE - 1].end()


def _hint_views(text: str) -> tuple[str, str] | tuple[bytes, bytes]:
    """The text, as it is and lower-cased, to look for the ASCII hints in.

    As UTF-8 when mostly ASCII: ``bytes.lower()`` only changes ASCII letters, yet finds the
    same ASCII substrings as ``str.lower()`` (at a fifth of the cost on 2 KB), since every
    other character lower-cases to non-ASCII ones, except İ and the Kelvin sign. Text with
    those, or mostly outside ASCII (where the bytes are longer), is searched as str.
    """
    data = text.encode("utf-8", "surrogatepass")
    if 2 * len(data) > 3 * len(text) or _lowers_to_ascii(data, text):
        return text, text.lower()
    return data, data.lower()


def _lowers_to_ascii(data: bytes, text: str) -> bool:
    """Whether the text (``data`` its UTF-8) holds İ or K, which lower-case to ASCII."""
    # (their last bytes are rare: a one-byte search, which is quick, goes first)
    return len(data) != len(text) and any(c[-1:] in data and c in data for c in _LOWER_TO_ASCII)


def hints_found(text: str) -> tuple[bool, bool, bool, bool]:
    """Whether the text holds a hint of each regex: override, reveal, marker, persona.

    Where ``_hint_views`` gives bytes (text mostly in ASCII, without İ or K), the lower-case
    hints are looked for only when ``_LOWER_PHRASES`` names them as candidates: a hint in
    ``data.lower()`` is in the plain view too, which differs only in making whitespace
    other than " " a space and runs of spaces one (hints hold neither).
    """
    grams = text_grams(text)
    if grams is None or _lowers_to_ascii(grams.data, text):
        data, lowered = _hint_views(text)
        return (
            _OVERRIDE_HINTS.found_in(lowered),
            _REVEAL_HINTS.found_in(lowered),
            _MARKER_HINTS.found_in(lowered),
            _PERSONA_HINTS.found_in(data),
        )
    persona = _PERSONA_HINTS.found_in(grams.data)
    candidates = _LOWER_PHRASES.candidates(grams)
    if not candidates:  # (most texts)
        return False, False, False, persona
    lowered = grams.data.lower()
    found = {phrase.decode() for phrase in candidates if phrase in lowered}
    return (
        not found.isdisjoint(_OVERRIDE_HINTS.hints),
        not found.isdisjoint(_REVEAL_HINTS.hints),
        not found.isdisjoint(_MARKER_HINTS.hints),
        persona,
    )


class InjectionDetector:
    name = "injection"

    def __init__(self, config: InjectionConfig | None = None) -> None:
        self.config = config or InjectionConfig()

    def _flag(
        self, category: str, severity: Severity, score: float, span: tuple[int, int], why: str
    ) -> Flag:
        return make_flag(self.name, category, severity, score, span[0], span[1], why)

    def detect(self, output: LLMOutput, context: ScreenContext) -> list[Flag]:
        text = output.output_text
        override, reveal, marker, persona = hints_found(text)
        documents = self.config.check_context_documents and output.context
        if not (override or reveal or marker or persona or documents):
            return []  # (most texts)
        flags: list[Flag] = []
        overrides = _OVERRIDE.finditer(text) if override else ()
        reveals = _REVEAL.finditer(text) if reveal else ()
        markers = [
            *(_MARKERS.finditer(text) if marker else ()),
            *(_PERSONAS.finditer(text) if persona else ()),
        ]
        markers.sort(key=lambda m: m.start())
        for m in overrides:
            flags.append(
                self._flag(
                    "instruction_override",
                    "high",
                    0.85,
                    m.span(),
                    "Output repeats or announces an instruction override",
                )
            )
        for m in reveals:
            flags.append(
                self._flag(
                    "system_prompt_leak",
                    "high",
                    0.9,
                    m.span(),
                    "Output appears to reveal its system prompt or instructions",
                )
            )
        for m in markers:
            flags.append(
                self._flag(
                    "jailbreak_marker",
                    "high",
                    0.9,
                    m.span(),
                    f"Jailbreak marker '{m.group()[:40]}' in the output",
                )
            )
        if documents:
            flags.extend(self._obeyed(output))
        return flags

    def _obeyed(self, output: LLMOutput) -> list[Flag]:
        text = output.output_text
        lowered = ""
        flags = []
        for doc in output.context:
            payloads, clauses = planted_payloads(doc.text)
            for clause in clauses:
                span = clause_echo(clause, text)
                if span is not None:
                    flags.append(
                        self._flag(
                            "obeyed_injected_instruction",
                            "critical",
                            0.9,
                            span,
                            f"Output does what context document '{doc.doc_id[:60]}' "
                            f"instructed the assistant to say",
                        )
                    )
            for payload in payloads:
                lowered = lowered or text.lower()
                at = lowered.find(payload.lower())
                if at < 0:
                    continue
                flags.append(
                    self._flag(
                        "obeyed_injected_instruction",
                        "critical",
                        0.92,
                        (at, at + len(payload)),
                        f"Output follows an instruction planted in context document "
                        f"'{doc.doc_id[:60]}'",
                    )
                )
        return flags
