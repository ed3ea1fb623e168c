"""Toxicity: the packaged model scored exactly, per sentence; prohibited terms per app."""

from __future__ import annotations

import math
import random
import re
import sys
from collections import Counter
from itertools import compress, repeat

import pytest
from profanity_check import predict_prob

from hitl_prescreen.config import load_config
from hitl_prescreen.detectors import toxicity
from hitl_prescreen.detectors.base import FOLDS_TO_ASCII, is_plain, make_flag
from hitl_prescreen.detectors.profanity_model import (
    MAX_CODE,
    STOP_CODE,
    TOKEN,
    SentenceGate,
    _at_least,
    ascii_view,
    load_model,
)
from hitl_prescreen.detectors.toxicity import ToxicityConfig, ToxicityDetector
from tests.prescreen.helpers import run, spans

pytestmark = pytest.mark.unit
TOX = ToxicityDetector()


@pytest.mark.parametrize(
    "text",
    [
        "you are an idiot",
        "Shut up and read the docs, moron.",
        "Open Settings, choose Billing, and edit the address field.",
        "What the hell is this garbage, seriously",
        "",
    ],
)
def test_fast_model_matches_the_packaged_model(text):
    ours = load_model().probability(Counter(t.lower() for t in TOKEN.findall(text.lower())))
    assert ours == pytest.approx(float(predict_prob([text])[0]), abs=1e-9)


def test_the_toxic_sentence_is_flagged_not_the_whole_answer():
    text = (
        "If you cancel less than 48 hours ahead there's a $40 fee. "
        "Shut up and read the docs, moron. Anything else?"
    )
    assert spans(TOX, text) == [("toxicity", "Shut up and read the docs, moron.")]


def test_polite_text_is_clean():
    text = "Thanks for reaching out! Your refund will appear within 5-7 business days."
    assert run(TOX, text) == []


def test_prohibited_terms_apply_to_their_app_and_to_all_apps():
    config = ToxicityConfig(
        prohibited={
            "*": {"self_harm": ["ways to end your life"]},
            "finance-advisor": {"financial_guarantee": ["guaranteed returns"]},
        }
    )
    det = ToxicityDetector(config)
    text = "We offer Guaranteed Returns of 9%."
    assert spans(det, text, app="finance-advisor") == [
        ("financial_guarantee", "Guaranteed Returns")
    ]
    assert spans(det, text, app="support-bot") == []
    assert spans(det, "ways to end your life", app="x") == [("self_harm", "ways to end your life")]


def test_the_skip_bound_never_hides_a_sentence_that_reaches_the_threshold():
    model = load_model()
    sentences = [
        *TOXIC_SAMPLES,
        "Open Settings, choose Billing, and edit the address field.",
        "You can kill the process with kill -9 if it hangs.",
    ]
    for threshold in (0.5, 0.8, 0.95):
        for sentence in sentences:
            counts = Counter(TOKEN.findall(sentence.lower()))
            if model.probability(counts) >= threshold:
                assert model.may_reach(counts, threshold), (sentence, threshold)


TOXIC_SAMPLES = [
    "you are an idiot",
    "Shut up and read the docs, moron.",
    "What the hell is this garbage, seriously",
    "This is the dumbest fucking question I've seen today.",
    "Stop whining, you pathetic loser.",
    "damn it",
]


@pytest.mark.parametrize(
    "text",
    [
        "Honestly, you people are worthless.",
        "Are you really this clueless?",
        "I'm not helping someone this incompetent.",
        "Now go away.",
    ],
)
def test_contempt_without_profanity_is_flagged(text):
    assert [c for c, _ in spans(TOX, text)] == ["toxicity"]


@pytest.mark.parametrize(
    "text",
    [
        "The pain should go away in a few days.",
        "Are you lazy loading the images?",
        "You are the most valuable customer we have.",
        "If the error doesn't go away, restart the router.",
    ],
)
def test_ordinary_uses_of_those_words_are_quiet(text):
    assert run(TOX, text) == []


# The shortcuts of the detector and the model (C-level passes over an ASCII view of the
# text, bounds that skip scoring, windows for the insult regex) must give exactly the
# answers of the plain computation; these tests compare them on random texts built from
# the awkward cases: toxic and insulting phrases with odd spacing, characters that
# re.IGNORECASE folds to ASCII, non-ASCII vocabulary terms, CJK stops, emoji, digits.

_PIECES = [
    *TOXIC_SAMPLES,
    "Open Settings, choose Billing, and edit the address field",
    "Returns are started from Orders > Return an item, which creates a prepaid label",
    "You can kill the process with kill -9 if it hangs",
    "you are an idiot", "You're  a complete moron", "are you\u00a0really stupid",
    "you people are worthless", "now go away", "Go\naway", "just go   away", "stop whining",
    "Shut\tup", "use your brain", "go bother someone else", "figure it out yourself",
    "someone this lazy", "people like you are the reason", "Are you lazy loading",
    "you are a joke", "a waste of time", "you're so stupid2", "stupid_", "go away_",
    "you are \u017ftupid", "Are you \u0131gnorant", "\u017fhut up", "\u017ftupid",
    "\u0131diot", "\u0130diot", "jo\u212ae", "\u212aILL", "\u03a3",
    "\u039f\u0394\u039f\u03a3",
    "jos\u00e9", "beyonc\u00e9", "Beyonc\u00e9 sucks", "\u8ff7\u60d1", "\u9023\u7d61",
    "d\u03b1lus", "\u60a8\u597d\uff01", "\u3002", "\uff1f", "\U0001f60a",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "Caf\u00e9", "na\u00efve", "e\u0301",
    "snake_case", "a_b", "x", "42", "4862714970940099", "fuck", "shit", "damn", "bitch",
    "crap", "orders", "item", "how to kill yourself", "\u0130 HOW TO KILL YOURSELF",
    "how to \u212aill yourself", "Ways to end your life", "ways to end your lifetime",
    "guaranteed returns", "Guaranteed Returns!", "kill yourself", "hell", "what the hell",
    "risk-free investment", "Risk free  investment", "can't lose money", "cant lose money",
    "no need to see a doctor", "see a doctor", "how to kill your\u017felf", "money", "you\u017f",
    "\u03a3\u03a3", "O\u03a3.", "\u03c3",
]  # fmt: skip
_SEPARATORS = [
    " ", "  ", ". ", "! ", "? ", "\n", "", ", ", "...", "?!", " \u2014 ", "\t", "\u00a0",
    "\u3000", "'", "_", "-", ".\n", "\u3002", "\x1c",
]  # fmt: skip


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            parts += [rng.choice(_PIECES), rng.choice(_SEPARATORS)]
        texts.append("".join(parts))
    return texts


def _loop_probability(model, counts):
    """The model's arithmetic as a plain loop (how it was first written)."""
    norm_sq = 0.0
    dots = [0.0] * len(model.intercepts)
    for term, count in counts.items():
        idf = model.idf.get(term)
        if idf is None:
            continue
        value = count * idf
        norm_sq += value * value
        for k, w in enumerate(model.weights[term]):
            dots[k] += value * w
    norm = math.sqrt(norm_sq) or 1.0
    total = 0.0
    for k, (a, b) in enumerate(model.calibrations):
        total += 1.0 / (1.0 + math.exp(a * (dots[k] / norm + model.intercepts[k]) + b))
    return total / len(dots)


def _reference_detect(det, text, app="support-bot"):
    """The detector without any shortcut: every sentence tokenized, ``may_reach`` as the
    only gate, the plain loop for the score, the regexes over the whole text."""
    model, threshold, name = det.model, det.config.threshold, det.name
    flags = []
    lowered = text.lower()
    same_length = len(lowered) == len(text)
    for sentence in toxicity._SENTENCE.finditer(text):
        piece = lowered[sentence.start() : sentence.end()] if same_length else None
        tokens = TOKEN.findall(piece or sentence.group().lower())
        if not tokens or (threshold > 0 and not model.may_reach(set(tokens), threshold)):
            continue
        counts = Counter(tokens)
        p = _loop_probability(model, counts)
        if p < threshold:
            continue
        raw = sentence.group()
        start = sentence.start() + len(raw) - len(raw.lstrip())
        end = sentence.start() + len(raw.rstrip())
        strongest = ", ".join(sorted(counts, key=model.term_weight, reverse=True)[:2])
        severity = "critical" if p >= det.config.critical_at else "high"
        why = f"Toxic language (p={p:.2f}; strongest words: {strongest})"
        flags.append(make_flag(name, "toxicity", severity, p, start, end, why))
    if any(hint in lowered for hint in toxicity._INSULT_HINTS):
        covered = [(f.start, f.end) for f in flags]
        for m in toxicity._TARGETED_INSULT.finditer(text):
            if any(a <= m.start() < b for a, b in covered):
                continue
            start, end = toxicity._sentence_around(text, m.start(), m.end())
            covered.append((start, end))
            why = f"Contempt aimed at the reader ('{m.group()[:40]}')"
            flags.append(make_flag(name, "toxicity", "high", 0.85, start, end, why))
    for key in (toxicity.ALL_APPS, app):
        pattern = det._patterns.get(key)
        for m in pattern.finditer(text) if pattern else ():
            category = toxicity._category_of(det._terms[key], m.group())
            why = f"Prohibited for {app}: {category.replace('_', ' ')}"
            flags.append(make_flag(name, category, "high", 0.9, m.start(), m.end(), why))
    return flags


def test_the_shortcuts_flag_exactly_what_the_plain_computation_flags():
    config = ToxicityConfig(
        prohibited={
            "*": {"self_harm": ["how to kill yourself", "ways to end your life"]},
            "finance-advisor": {"financial_guarantee": ["guaranteed returns", "what?"]},
            "health-assistant": {
                "overpromise": ["risk-free investment", "can't lose money", "see a doctor"]
            },
        }
    )
    apps = ("support-bot", "finance-advisor", "health-assistant")
    texts = _random_texts(1500, seed=7)
    for threshold in (0.8, 0.5):
        det = ToxicityDetector(config.model_copy(update={"threshold": threshold}))
        for n, text in enumerate(texts):
            app = apps[n % 3]
            assert run(det, text, app=app) == _reference_detect(det, text, app), text


def test_probability_is_the_same_float_as_a_plain_loop():
    model = load_model()
    rng = random.Random(3)
    vocabulary = sorted(model.idf)
    for _ in range(2000):
        counts = Counter(rng.choices([*vocabulary, "notaterm"], k=rng.randint(0, 40)))
        assert model.probability(counts) == _loop_probability(model, counts)


def test_the_tighter_bound_never_hides_a_sentence_that_reaches_the_threshold():
    model = load_model()
    rng = random.Random(5)
    risky = sorted(model.positive_terms)
    vocabulary = sorted(model.idf)
    reached = 0
    for _ in range(3000):
        words = rng.choices(risky, k=rng.randint(1, 6)) + rng.choices(
            vocabulary, k=rng.randint(0, 20)
        )
        counts = Counter(words)
        probability = model.probability(counts)
        for threshold in (0.05, 0.5, 0.8, 0.95):
            if probability >= threshold:
                reached += 1
                assert model.probability_if_reaches(counts, threshold) == probability
    assert reached > 1000  # the test exercises the bound


def test_the_gate_keeps_every_sentence_that_may_reach_the_threshold():
    model = load_model()
    texts = _random_texts(600, seed=11)
    kept = 0
    for threshold in (0.3, 0.5, 0.8, 0.95):
        gate = model.gate(threshold)
        for text in texts:
            lowered = text.lower()
            if len(lowered) != len(text):
                continue  # the detector does not use the gate then
            view = ascii_view(text)
            stretches = gate.stretches(view, gate.word_codes(view.words))
            for sentence in toxicity._SENTENCE.finditer(text):
                counts = Counter(TOKEN.findall(lowered[sentence.start() : sentence.end()]))
                if not counts or not model.may_reach(counts, threshold):
                    continue
                if model.probability_if_reaches(counts, threshold) is None:
                    continue
                kept += 1
                assert any(a <= sentence.start() < b for a, b in stretches), (sentence, text)
    assert kept > 500


@pytest.mark.parametrize("wide", ["\u8ff7\u60d1", "beyonc\u00e9", "jos\u00e9"])
def test_the_gate_counts_vocabulary_terms_that_are_not_ascii(wide):
    """A sentence that may reach the threshold only with its non-ASCII term is kept."""
    model = load_model()
    threshold = 0.8
    gate = model.gate(threshold)
    reach_sq = model.reach_sq(threshold)
    rng = random.Random(17)
    risky = sorted(t for t in model.positive_terms if t.isascii())
    for _ in range(20000):
        words = rng.sample(risky, rng.randint(1, 8))
        total = sum(model.positive_sq[t] for t in words)
        if reach_sq - model.positive_sq[wide] <= total < reach_sq * 0.97:
            break
    else:
        raise AssertionError("no sentence found")
    text = f"Fine. {' '.join(words)} {wide}. Fine."
    counts = Counter(TOKEN.findall(text.lower()))
    assert model.may_reach(counts, threshold)
    view = ascii_view(text)
    sentence_start = 6
    kept = gate.stretches(view, gate.word_codes(view.words))
    assert any(a <= sentence_start < b for a, b in kept)
    # ... and only thanks to the term: without it the stretch would be dropped.
    blind = SentenceGate({**gate.codes, b"beyonc": 0, b"jos": 0}, gate.need, (), {}, 0.0)
    assert not any(
        a <= sentence_start < b for a, b in blind.stretches(view, blind.word_codes(view.words))
    )


def test_the_insult_shortcuts_find_what_the_plain_search_finds():
    det = ToxicityDetector()
    for text in _random_texts(1500, seed=13):
        lowered = text.lower()
        view = ascii_view(text)
        marks = bytes(map(det._marks.get, view.words, repeat(toxicity._ODD)))
        odd = b" ".join(set(compress(view.words, marks.translate(toxicity._IS_ODD))))
        has_hint = any(hint in lowered for hint in toxicity._INSULT_HINTS)
        assert toxicity._has_hint(view, odd) == has_hint, text
        exact_only = any(c in text for c in "\u017f\u0131\u0130")
        spans = [m.span() for m in toxicity._insult_matches(text, view.encoded, odd, exact_only)]
        assert spans == [m.span() for m in toxicity._TARGETED_INSULT.finditer(text)], text


def test_only_four_non_ascii_characters_fold_to_ascii():
    """What the encoded-text shortcuts rely on (see toxicity._FOLDS_TO_ASCII)."""
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    folding = {c for c in re.findall(r"[\x00-\x7f]", everything, re.IGNORECASE) if c > "\x7f"}
    assert folding == {"\u0130", "\u0131", "\u017f", "\u212a"}
    assert "\u212a".lower() == "k"
    growing = [c for c in everything if len(c.lower()) != 1]
    assert growing == ["\u0130"]


def test_insult_hints_and_codes_fit_their_encodings():
    assert {*toxicity._WORD_HINTS, *(h for _, h in toxicity._PHRASE_HINTS)} == {
        h.encode() for h in toxicity._INSULT_HINTS
    }
    gate = load_model().gate(0.8)
    assert max(code for word, code in gate.codes.items() if word != b".") <= MAX_CODE
    assert MAX_CODE | toxicity._ODD < STOP_CODE
    assert load_model().increasing


def test_a_prohibited_term_written_with_a_dotted_capital_i_is_flagged_under_its_category():
    detector = ToxicityDetector(load_config().detectors.toxicity)
    text = "Here is HOW TO K\u0130LL YOURSELF, said nobody."
    flags = [f for f in run(detector, text) if f.category == "self_harm_instructions"]
    assert [text[f.start : f.end] for f in flags] == ["HOW TO K\u0130LL YOURSELF"]


# The shortcuts of the second pass, each against what it replaces.

_ALL_CHARACTERS = "".join(map(chr, range(sys.maxunicode + 1)))


def test_encoding_the_text_then_lower_casing_the_bytes_is_the_lower_cased_text_encoded():
    """What lets ascii_view skip str.lower(), for every code point (see _LOWERS_TO_ASCII)."""
    others = _ALL_CHARACTERS.replace("\u0130", "").replace("\u212a", "")
    plain = others.encode("ascii", "replace").lower()
    assert plain == others.lower().encode("ascii", "replace")
    producers = [c for c in _ALL_CHARACTERS if c.lower() != c]
    made = "".join(c.lower() for c in producers)
    # Only U+0130 makes a combining dot; nothing else makes the long s or the dotless i.
    assert not {"\u017f", "\u0131"} & set(made)
    assert [c for c in producers if "\u0307" in c.lower()] == ["\u0130"]


def test_lower_casing_is_per_character_but_for_capital_sigma():
    """What lets _score lower-case a sentence on its own (without a capital sigma)."""
    others = _ALL_CHARACTERS.replace("\u03a3", "")
    assert "".join(map(str.lower, others)) == others.lower()
    assert "A\u03a3".lower() != "a" + "\u03a3".lower()  # why sigma is left out


def _plain_view(text: str) -> tuple[str, bytes, bytes, list[bytes], bool]:
    lowered = text.lower()
    encoded = lowered.encode("ascii", "replace")
    word = "abcdefghijklmnopqrstuvwxyz0123456789_"
    flat = bytes(
        c if chr(c) in word else 0x2E if chr(c) in ".!\n" else 0x09 if c == 0x3F else 0x20
        for c in encoded
    )
    plain = not any(c in text for c in FOLDS_TO_ASCII)
    return lowered, encoded, flat, flat.replace(b".", b" . ").split(), plain


def test_ascii_view_is_the_lower_cased_text_encoded():
    for text in [*_random_texts(800, seed=19), *_PIECES, "K\u0130LL \u212aill", ""]:
        view = ascii_view(text)
        lowered, encoded, flat, words, plain = _plain_view(text)
        assert (view.lower(), view.encoded, view.flat, view.words) == (
            lowered,
            encoded,
            flat,
            words,
        ), text
        assert view.plain == plain
        assert view.same_length == (len(lowered) == len(text))


def test_the_byte_test_for_folding_characters_is_the_plain_one():
    for text in [*_random_texts(300, seed=31), *_PIECES, *FOLDS_TO_ASCII, "\u0100\u212b", ""]:
        plain = not any(c in text for c in FOLDS_TO_ASCII)
        assert is_plain(text, text.encode("utf-8", "surrogatepass")) == plain, text


def test_exact_only_is_the_test_on_the_lower_cased_text():
    for text in [*_random_texts(800, seed=23), *_PIECES, "\u0130", "\u212a", "\u017f", ""]:
        lowered = text.lower()
        expected = not lowered.isascii() and (
            len(lowered) != len(text) or any(c in lowered for c in "\u017f\u0131")
        )
        assert toxicity._exact_only(ascii_view(text)) == expected, text


def test_adler32_sums_are_the_sums():
    rng = random.Random(29)
    for _ in range(3000):
        total = rng.choice([5, 60, 517, 518, 519, 520, 700])
        codes = bytes(rng.choice([0, 0, 1, 40, MAX_CODE]) for _ in range(total))
        pieces = codes.split(b"\x00" * rng.randint(1, 3))
        least = rng.randint(-1, 300)
        expected = [k for k, piece in enumerate(pieces) if sum(piece) >= least]
        assert _at_least(pieces, least, total) == expected
    worst = [bytes([MAX_CODE]) * 519]  # the largest sum adler32 is trusted with
    assert _at_least(worst, 519 * MAX_CODE, 519) == [0]
    assert _at_least(worst, 519 * MAX_CODE + 1, 519) == []


def test_each_prohibited_term_has_a_key_word_or_none():
    keys = toxicity._term_keys
    assert keys({"how to kill yourself": "a", "risk-free investment": "b"}) == {
        b"yourself",
        b"investment",
    }
    assert keys({"what?": "a"}) is None  # a '?' may be any non-ASCII character
    assert keys({"jos\u00e9": "a"}) is None
    assert keys({"!!!": "a"}) is None


def test_term_weights_are_computed_as_before():
    model = load_model()
    for term, weights in model.weights.items():
        assert model.term_weight(term) == model.idf[term] * sum(weights) / len(weights)
    assert model.term_weight("notaterm") == 0.0
