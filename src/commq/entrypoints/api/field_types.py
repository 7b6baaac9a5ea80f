"""Text and whole numbers as the API reads them from queries and bodies.

Pydantic's lax reading would take ``?limit=1_0`` or ``?limit= 10`` for 10, and a filter
of ``?provider=`` matches no job at all (a business id of ``" acme"`` names no business
anyone has). Each of these is refused with a 422 naming the field instead.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, StringConstraints


def _says_something(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces; leave it out to match any")
    return value


def _no_surrounding_spaces(value: str) -> str:
    if value != value.strip() or not value:
        raise ValueError("must not be empty, nor begin or end with spaces")
    return value


#: A text filter of at most so many characters that is neither empty nor only spaces.
FilterText64 = Annotated[str, StringConstraints(max_length=64), AfterValidator(_says_something)]
FilterText100 = Annotated[str, StringConstraints(max_length=100), AfterValidator(_says_something)]
FilterText200 = Annotated[str, StringConstraints(max_length=200), AfterValidator(_says_something)]
FilterText2048 = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_says_something)]
RECIPIENT_FILTER = (
    "an e-mail address matches whatever the case of its ASCII letters (as the"
    " suppression list compares them); a phone number or URL matches exactly"
)


#: A business id: at most 200 characters, none of them surrounding spaces, which would
#: name a business no key belongs to.
BusinessIdText = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_surrounding_spaces)
]


def _digits_only(value: object) -> object:
    # A query value is text: only ASCII digits are a whole number here, where pydantic
    # would also take " 10", "+10", "1_0" and "10.0".
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in digits, such as 50")
    return value


#: For a query parameter's ``int``, after its Query: ``Annotated[int, Query(...), WholeNumber]``.
WholeNumber = BeforeValidator(_digits_only)
