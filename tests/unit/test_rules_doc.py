"""docs/rules.md: every rule listed with the tests that prove it, and no listed proof missing."""

from __future__ import annotations

from scripts import rules


def test_every_rule_of_the_catalogue_is_in_the_proof_table() -> None:
    text = rules.DOC.read_text()
    assert [r.id for r in rules.rules(text)] == list(rules.listed(text))
    assert len(rules.rules(text)) >= 49


def test_the_proof_table_lists_exactly_the_tests_that_name_each_rule() -> None:
    text = rules.DOC.read_text()
    wrong = rules.problems(text, rules.proofs(rules.collected()))
    assert not wrong, "run `make rules` and commit docs/rules.md:\n" + "\n".join(wrong)


def test_a_rule_named_by_a_test_but_undefined_is_reported() -> None:
    text = rules.DOC.read_text()
    found = {"ZZZ_99": ["tests/unit/test_x.py::test_y__ZZZ_99"]}
    assert rules.problems(text, found)[0] == (
        "a test names ZZZ_99, which docs/rules.md does not define"
    )
