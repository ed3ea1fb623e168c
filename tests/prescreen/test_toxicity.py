"""Toxicity: the packaged model scored exactly, per sentence; prohibited terms per app."""

from __future__ import annotations

from collections import Counter

import pytest
from profanity_check import predict_prob

from hitl_prescreen.detectors.profanity_model import TOKEN, load_model
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
