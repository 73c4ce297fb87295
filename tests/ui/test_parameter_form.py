"""A plugin's settings form: every value its manifest allows can be set in it."""

from __future__ import annotations

from studio.core.parameters import FloatParam
from studio.ui.parameter_form import ParameterForm


def test_a_float_finer_than_two_places_is_shown_and_kept_exactly(qtbot):  # noqa: ANN001
    form = ParameterForm([FloatParam("amount", default=0.001, min=0.001, max=1.0, step=0.0005),
                          FloatParam("mix", default=0.125)])
    qtbot.addWidget(form)
    assert form.values() == {"amount": 0.001, "mix": 0.125}  # 2 places made them 0.0 and 0.13
