"""Property: whatever a submitter writes into an entry, `leaderboard validate` answers with success or
with named problems and one `latentbench: error:` line, never a traceback."""

import copy
import json
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.harness.leaderboard.conftest import CHEAP_ENTRY, read

from latentbench.cli import main

VALID = read(CHEAP_ENTRY)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["../../etc/passwd", "/etc", "leaderboard/checkpoints/digits-v1/x",
                                             "digits-v1", "0", "vae", "f" * 64]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _paths(value, prefix=()):
    """Every (path to a container, key) in a JSON value, the root's keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix, k
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield prefix, i
            yield from _paths(v, prefix + (i,))


PATHS = list(_paths(VALID))


@st.composite
def mutated_entries(draw):
    entry = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        parent_path, key = draw(st.sampled_from(PATHS))
        parent = entry
        try:
            for p in parent_path:
                parent = parent[p]
            parent[key]  # noqa: B018 -- still there after an earlier mutation?
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    text = json.dumps(entry)
    if draw(st.integers(0, 9)) == 0:  # now and then a truncated file
        text = text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_entries())
def test_any_mutated_entry_gives_success_or_one_error_line(tmp_path, capsys, text):
    lb = tmp_path / "lb"
    shutil.rmtree(lb, ignore_errors=True)
    (lb / "digits-v1").mkdir(parents=True)
    (lb / "digits-v1" / "vae.json").write_text(text)
    rc = main(["leaderboard", "validate", str(lb)])  # an unexpected exception fails the test here
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    if rc == 0:
        assert "1 entries in" in captured.out and captured.err == ""
    else:
        errors = [ln for ln in captured.err.splitlines() if ln.startswith("latentbench: error: ")]
        assert rc in (1, 2) and len(errors) == 1 and " -- " in errors[0], captured
        if rc == 1:  # every problem named as '<file>: <field>: <problem>'
            problems = captured.out.splitlines()[:-1]
            assert problems and all(ln.startswith("digits-v1/vae.json: ") for ln in problems), captured.out
