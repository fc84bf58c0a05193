"""The base of every spec section: unknown keys are errors, validated specs are immutable.

Its own module so that each stage's section (``sources``, ``dataset``, ``training``, …) can import it
without importing the top of the spec (:mod:`sre_llm.spec.model`), which imports them all.
"""


from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    """Unknown keys are errors; validated specs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)
