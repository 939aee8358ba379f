"""The base of every JSON request body of the API: strict types, no unknown fields.

Strict means no coercion: `"true"`, `"yes"` or `1` for a boolean, `42` for a string or
`"60"` for an integer are a 422 naming the field, as is a field the model does not have.
"""

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """A request body: every field of its exact JSON type, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")
