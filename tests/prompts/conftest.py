"""The review API fixtures (in-process and under uvicorn) for the prompt tests."""

from tests.review_api.conftest import api, live  # noqa: F401
