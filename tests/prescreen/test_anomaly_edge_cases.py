"""Anomaly features and scoring against a baseline; edge-case similarity."""

from __future__ import annotations

import json
import math
import random
import re
import statistics
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hitl_prescreen.baseline_store import parse_baseline
from hitl_prescreen.detectors import edge_cases
from hitl_prescreen.detectors.anomaly import (
    FEATURES,
    SCRIPTS,
    AnomalyDetector,
    Baseline,
    features,
    script_share,
    tally,
)
from hitl_prescreen.detectors.base import ScreenContext
from hitl_prescreen.detectors.edge_cases import (
    CANDIDATES,
    COMMON_POSTING,
    SAMPLE_ABOVE,
    EdgeCase,
    EdgeCaseDetector,
    EdgeCaseIndex,
    _as_word_chars,
    shingles,
    words,
)
from hitl_prescreen.edge_case_store import build_index
from tests.prescreen.helpers import run

pytestmark = pytest.mark.unit
_SENTENCE = "the refund will appear on your statement within five business days after scan"
WORDS = _SENTENCE.split()


def _typical(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 40))).capitalize() + "."


def _baseline(n: int = 200) -> Baseline:
    rng = random.Random(7)
    baseline = Baseline()
    for _ in range(n):
        baseline.add(features(_typical(rng)))
    return baseline


def test_welford_matches_the_textbook_mean_and_deviation():
    values = [features(t)["entropy"] for t in ("abc", "aaaa", "hello world", "zzz yy x")]
    baseline = Baseline()
    for text in ("abc", "aaaa", "hello world", "zzz yy x"):
        baseline.add(features(text))
    assert baseline.mean["entropy"] == pytest.approx(statistics.mean(values))
    assert baseline.std("entropy") == pytest.approx(statistics.stdev(values))


def test_typical_items_are_quiet_and_outliers_flagged():
    context = ScreenContext(baseline=_baseline())
    det = AnomalyDetector()
    assert run(det, _typical(random.Random(99)), context) == []
    odd = run(det, "这是一个完全不同的回答\uff0c用的是另一种语言和文字\u3002" * 3, context)
    assert "outlier_non_latin_share" in {f.category for f in odd}
    long = run(det, _typical(random.Random(1)) * 60, context)
    assert "outlier_log_length" in {f.category for f in long}


def test_no_verdict_before_enough_samples():
    assert run(AnomalyDetector(), "x" * 5000, ScreenContext(baseline=_baseline(10))) == []


def test_baseline_parses_from_the_redis_hash_and_the_script_reply():
    as_hash = {b"n": b"3", b"mean:entropy": b"2.5", b"m2:entropy": b"0.5"}
    flat = [b"n", b"3", b"mean:entropy", b"2.5", b"m2:entropy", b"0.5"]
    for raw in (as_hash, flat):
        baseline = parse_baseline(raw)
        assert baseline.count == 3 and baseline.mean["entropy"] == 2.5
        assert baseline.std("entropy") == pytest.approx(0.5)


def test_edge_cases_match_near_duplicates_only():
    index = EdgeCaseIndex.build(
        [
            EdgeCase(
                "c1",
                "Take two tablets of ibuprofen every hour until the pain stops.",
                ("alignment_safety",),
            ),
            EdgeCase("c2", "Your refund will appear within five business days.", ()),
        ]
    )
    det = EdgeCaseDetector()
    context = ScreenContext(edge_cases=index)
    flags = run(det, "take two tablets of Ibuprofen every hour until pain stops!", context)
    assert [f.category for f in flags] == ["known_edge_case"]
    assert "c1" in flags[0].explanation and flags[0].score > 0.5
    assert run(det, "Open Settings and choose Billing to edit the address.", context) == []


def test_knowledge_base_entries_that_are_not_usable_are_skipped():
    raw = {
        b"good": json.dumps(
            {"case_id": "good", "text": "a known tricky answer", "labels": ["pii"]}
        ).encode(),
        b"bad": b"not json",
        b"no-text": json.dumps({"case_id": "x"}).encode(),
    }
    assert list(build_index(raw).cases) == ["good"]


def test_text_outside_the_declared_language_script_is_flagged():
    det = AnomalyDetector()
    chinese = "这是一个完全不同的回答\uff0c用的是另一种语言和文字\u3002" * 2
    flags = run(det, chinese, language="en")
    assert [f.category for f in flags] == ["language_mismatch"]
    assert run(det, chinese, language="zh") == []
    assert run(det, "Привет, это ответ на русском языке для проверки.", language="ru") == []
    assert run(det, "Open Settings, choose Billing, and edit the address.", language="en") == []
    assert run(det, "ok 好", language="en") == []  # too few letters to judge


# --- fast paths against the plain implementations they replace ---------------------------

_ALL_CHARS = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
# Characters the fast paths treat specially, so that random text meets them often.
_TRICKY = (
    "aZ_09 \t\n.,'-\u00e9\u00ef\u2014\U0001f60a\u200d\u0301"  # as in the bench texts
    "\u03a3\u03c3\u0130\u212a\u017f\u0131\u60a8\uff01\xb2\u0663"  # sigmas, i/k/s folds, CJK
)
unicode_text = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(_TRICKY)),
    max_size=300,
)


def _reference_features(text: str) -> dict[str, float]:
    """``features`` as first written, on a Counter of the characters."""
    n = len(text)
    if n == 0:
        return dict.fromkeys(FEATURES, 0.0)
    counts = Counter(text)
    entropy = -sum((c / n) * math.log2(c / n) for c in counts.values())
    letters = non_latin = digits = 0
    for ch, c in counts.items():
        if ch.isalpha():
            letters += c
            if ord(ch) > 0x24F:
                non_latin += c
        elif ch.isdigit():
            digits += c
    return {
        "log_length": math.log1p(n),
        "entropy": entropy,
        "non_latin_share": non_latin / letters if letters else 0.0,
        "digit_share": digits / n,
    }


def _reference_script_share(text: str, script: str) -> tuple[float, int]:
    letters = inside = 0
    for ch, count in Counter(text).items():
        if ch.isalpha():
            letters += count
            inside += count * any(lo <= ord(ch) <= hi for lo, hi in SCRIPTS[script])
    return (inside / letters if letters else 1.0), letters


def _same_floats(a: dict[str, float], b: dict[str, float]) -> bool:
    return list(a) == list(b) and all(a[k].hex() == b[k].hex() for k in a)  # -0.0 too


@settings(max_examples=400, deadline=None)
@given(unicode_text)
def test_features_are_the_same_floats_as_the_counter_version(text):
    assert _same_floats(features(text), _reference_features(text))
    assert tally(text).ordered == list(Counter(text).values())
    for script in SCRIPTS:
        assert script_share(text, script) == _reference_script_share(text, script)


@pytest.mark.parametrize(
    "text", ["", "aaaa", "abc", "x\ud800y\udfff", "ünïcödé 😊 " * 40, "1 2 3 ٣ ²", "Σ" * 5]
)
def test_features_edge_cases_match_the_counter_version(text):
    assert _same_floats(features(text), _reference_features(text))
    assert script_share(text, "latin") == _reference_script_share(text, "latin")


def test_long_and_varied_texts_take_the_one_pass_paths():
    varied = "".join(chr(0x4E00 + (n * 7919) % 20000) + " ,.;"[n % 4] for n in range(30_000))
    symbols = " ".join(chr(0x2190 + n) + "x" for n in range(200))  # arrows, not word characters
    for text in (varied, symbols, varied[:3000] + "abc" * 1000):
        assert _same_floats(features(text), _reference_features(text))
        assert script_share(text, "cjk") == _reference_script_share(text, "cjk")
        assert words(text) == re.findall(r"\w+", text.lower())


@settings(max_examples=400, deadline=None)
@given(unicode_text)
@example("\u039f\u0394\u039f\u03a3 and A\u03a3. \u03a3A")  # final sigma depends on what follows
@example("\u0130stanbul \u212aelvin")  # lower-case to two characters / to ASCII
def test_words_are_the_regex_words_of_the_lower_cased_text(text):
    assert words(text) == re.findall(r"\w+", text.lower())


@settings(max_examples=300, deadline=None)
@given(unicode_text, st.data())
def test_words_up_to_a_space_are_the_first_words_of_the_whole(text, data):
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    cut = data.draw(st.sampled_from(spaces)) if spaces else len(text)
    head = words(text[:cut])
    assert words(text)[: len(head)] == head


def test_words_with_lone_surrogates_fall_back_to_the_regex():
    text = "Abc\ud800DEF gh"
    assert words(text) == re.findall(r"\w+", text.lower()) == ["abc", "def", "gh"]


def test_word_rewriting_rests_on_these_unicode_facts():
    # \w is exactly isalnum() or "_" ...
    assert re.findall(r"\w", _ALL_CHARS) == [c for c in _ALL_CHARS if c.isalnum() or c == "_"]
    # ... lower() works character by character except for capital sigma ...
    no_sigma = _ALL_CHARS.replace("\u03a3", "")
    assert "".join(map(str.lower, no_sigma)) == no_sigma.lower()
    # ... and no replacement holds a character that another replacement would change.
    rewrite = _as_word_chars.__wrapped__
    changed = [c for c in _ALL_CHARS if rewrite(c) != c]
    assert not {c for c in changed for r in rewrite(c) if r != " " and rewrite(r) != r}


def _reference_similar(
    index: EdgeCaseIndex, text: str, threshold: float
) -> list[tuple[EdgeCase, float]]:
    """``EdgeCaseIndex.similar`` as first written (no length shortcut, no size bound)."""
    grams = shingles(text)
    if not grams or not index.cases:
        return []
    shared: Counter[str] = Counter()
    sampled = len(grams) > SAMPLE_ABOVE
    for gram in grams:
        if sampled and gram & 7:
            continue
        ids = index.postings.get(gram)
        if ids and len(ids) <= COMMON_POSTING:
            shared.update(ids)
    found = []
    for case_id, _ in shared.most_common(CANDIDATES):
        theirs = index.grams[case_id]
        common = len(grams & theirs)
        score = common / (len(grams) + len(theirs) - common)
        if score >= threshold:
            found.append((index.cases[case_id], score))
    return sorted(found, key=lambda pair: pair[1], reverse=True)


sentence = st.lists(st.integers(0, 40).map("w{}".format), max_size=150).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(sentence, min_size=1, max_size=12), sentence, st.sampled_from([0.2, 0.5, 0.9]))
def test_similar_finds_what_scoring_every_candidate_finds(cases, text, threshold):
    index = EdgeCaseIndex.build([EdgeCase(f"c{n}", t) for n, t in enumerate(cases)])
    assert index.similar(text, threshold) == _reference_similar(index, text, threshold)


_WORD_POOL = [
    "w1", "w2", "w3", "W4", "the", "caf\u00e9", "Caf\u00e9", "na\u00efve", "\u00e9", "\u2014",
    "\U0001f60a", "\u60a8\u597d\uff01", "\u03a3\u03c3", "\u0130stanbul", "x_y", "42", "it's",
]  # fmt: skip
_WORD_OR_NUMBERED = st.one_of(st.sampled_from(_WORD_POOL), st.integers(0, 300).map("v{}".format))


def _sentence(max_words: int) -> st.SearchStrategy[str]:
    count = st.integers(0, max_words)
    words = count.flatmap(lambda n: st.lists(_WORD_OR_NUMBERED, min_size=n, max_size=n))
    return words.map(lambda ws: " ".join(ws).replace(" \u2014 ", "\u2014"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_sentence(12), min_size=1, max_size=6), _sentence(200), st.data())
def test_word_count_from_below_implies_the_length_shortcut(cases, text, data):
    index = EdgeCaseIndex.build([EdgeCase(f"c{n}", t) for n, t in enumerate(cases)])
    threshold = data.draw(st.sampled_from([0.2, 0.5, 0.9]))
    head = data.draw(st.one_of(st.just(len(text.encode()) + 1), st.integers(0, len(text) + 1)))
    if index._too_many_words(text, head, threshold):
        assert index._too_long(words(text), threshold)
    assert index.similar(text, threshold) == _reference_similar(index, text, threshold)


def test_word_count_from_below_is_told_without_words(monkeypatch):
    index = EdgeCaseIndex.build([EdgeCase("short", "your refund will appear within five days")])
    long = " ".join(f"w{n}" if n % 7 else f"w\u00f6rd{n} caf\u00e9" for n in range(400))
    monkeypatch.setattr(edge_cases, "words", None)  # would raise if called
    assert index.similar(long, 0.5) == []


def test_length_shortcut_counts_only_words_that_start_a_shingle():
    # 4 shingles against the case's 2, 2 shared: 2/4 reaches 0.5 exactly. The text's last
    # two words start no shingle, so they must not count towards its length.
    index = EdgeCaseIndex.build([EdgeCase("c", "w1 w2 w3 w4")])
    assert [score for _, score in index.similar("w1 w2 w3 w4 w5 w6", 0.5)] == [0.5]


def test_text_far_longer_than_every_case_is_not_hashed(monkeypatch):
    index = EdgeCaseIndex.build([EdgeCase("short", "your refund will appear within five days")])
    long = " ".join(f"word{n}" for n in range(400))
    monkeypatch.setattr(edge_cases, "_hashed_grams", None)  # would raise if called
    assert index.similar(long, 0.5) == []
