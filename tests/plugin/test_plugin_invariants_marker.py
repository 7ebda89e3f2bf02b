"""``@pytest.mark.basin_invariants``: the test fails if a declared frozen model trains."""

from __future__ import annotations

import importlib.util

import pytest

MODELS = """
import pytest
import torch


@pytest.fixture
def ocean():
    return torch.nn.Linear(4, 4)


@pytest.fixture
def teachers():
    return [torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)]


@pytest.fixture
def student():
    return torch.nn.Linear(4, 4)
"""

TESTS = """
import pytest
import torch

invariants = pytest.mark.basin_invariants(ocean="ocean", frozen=["teachers"])


@invariants
def test_student_trains(ocean, teachers, student):
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    with torch.no_grad():
        target = ocean(torch.ones(4))
    (student(torch.ones(4)) - target).pow(2).sum().backward()
    optimizer.step()


@invariants
def test_ocean_optimizer_steps(ocean):
    optimizer = torch.optim.SGD(ocean.parameters(), lr=0.1)
    for param in ocean.parameters():
        param.grad = torch.ones_like(param)
    optimizer.step()


@invariants
def test_gradient_reaches_a_teacher(teachers, student):
    student(teachers[1](torch.ones(4))).sum().backward()


@pytest.mark.basin_invariants(ocean="ocean")
def test_marker_requests_the_fixtures_it_names():
    pass
"""

EDIT_IN_PLACE = """
import pytest
import torch


@pytest.fixture
def ocean():
    return torch.nn.Linear(4, 4)


@pytest.fixture(autouse=True)
def edit_after(request, ocean):
    yield
    with torch.no_grad():
        ocean.weight.add_(1.0)


@pytest.mark.basin_invariants(ocean="ocean")
def test_ocean_edited_in_place(ocean):
    with torch.no_grad():
        ocean.bias.zero_()
"""


needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="the marker's guard needs torch"
)


@needs_torch
def test_frozen_models_fail_the_test_when_they_train(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MODELS)
    pytester.makepyfile(test_invariants=TESTS)
    result = pytester.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED test_invariants.py::test_student_trains",
            "PASSED test_invariants.py::test_marker_requests_the_fixtures_it_names",
            "FAILED test_invariants.py::test_ocean_optimizer_steps - *",
            "FAILED test_invariants.py::test_gradient_reaches_a_teacher - *",
            "E *FrozenParameterError: SGD.step() would update frozen parameter 'weight'",
            "E *FrozenParameterError: a gradient reached frozen parameter 'bias'",
        ]
    )


@needs_torch
def test_in_place_edits_during_the_test_fail_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_edit=EDIT_IN_PLACE)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*basin_invariants: frozen model parameters changed during the test: bias"]
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("observers=['ocean']", "*unknown argument 'observers'*observers learn vicariously*"),
        ("'ocean'", "*takes keyword arguments only*"),
        ("ocean=ocean_fixture", "*takes fixture names, got <function*"),
    ],
)
def test_misuse_is_a_clear_error(pytester: pytest.Pytester, arguments: str, message: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        def ocean_fixture():
            pass

        @pytest.mark.basin_invariants({arguments})
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
