import numpy as np
import pytest

from phn import metrics

NAN = np.nan
# Hand-computed example: 3 experiences.
ACC = np.array([
    [0.90, NAN, NAN],
    [0.70, 0.80, NAN],
    [0.60, 0.75, 0.95],
])


def test_aca_is_mean_of_final_row():
    assert metrics.average_accuracy(ACC) == pytest.approx((0.60 + 0.75 + 0.95) / 3)


def test_learning_accuracy_is_mean_of_diagonal():
    assert metrics.learning_accuracy(ACC) == pytest.approx((0.90 + 0.80 + 0.95) / 3)


def test_forgetting_excludes_last_experience():
    f = metrics.forgettings(ACC)
    assert f[:2] == pytest.approx([0.30, 0.05])
    assert np.isnan(f[2])
    assert metrics.forgetting(ACC) == pytest.approx((0.30 + 0.05) / 2)


def test_forgetting_single_experience_is_nan():
    assert np.isnan(metrics.forgetting(np.array([[0.5]])))
    assert metrics.average_accuracy(np.array([[0.5]])) == 0.5


def test_negative_forgetting_when_accuracy_improves():
    acc = np.array([[0.5, NAN], [0.7, 0.9]])
    assert metrics.forgetting(acc) == pytest.approx(-0.2)


def test_summary_in_percent():
    s = metrics.summary(ACC)
    assert s["aca"] == pytest.approx(76.666, abs=1e-3)
    assert s["forgetting"] == pytest.approx(17.5)


def test_table_round_trip():
    table = metrics.accuracy_table(ACC)
    assert len(table) == 6
    np.testing.assert_array_equal(metrics.accuracy_matrix(table, 3), ACC)


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(3), np.zeros((0, 0))])
def test_rejects_non_square(bad):
    with pytest.raises(ValueError):
        metrics.average_accuracy(bad)
