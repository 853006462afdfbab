"""Hostile input for the readers' property tests: any JSON or YAML value a file may hold.

Numbers past a float's range and past the 1e12 golive allows, NaN and infinities, text with line
breaks, control characters and lone surrogates, wrong types everywhere, nested a few levels deep.
Every reader must turn each of them into one line naming the field or file, never a traceback.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Fast and quiet: a modest number of examples, no deadline (a busy machine is not a failure),
# no example database left in the working tree.
FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.sampled_from([10 ** 400, -(10 ** 400), 10 ** 13, 2 ** 63, -1, 0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\n", "x\nFAIL forged: verifies", "\x00", "\ud800", "\u2028", "../../etc/passwd",
                     "javascript:alert(1)", "<script>", "0" * 64]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=12,
)


def nested(depth: int, inner: str = "1") -> str:
    """JSON nested `depth` lists deep, as text (json.dumps itself would refuse to go that deep)."""
    return "[" * depth + inner + "]" * depth
