import csv

import numpy as np
import pytest

from flare.cli import main
from flare.common.curves import (
    GameLog,
    first_reaching,
    moving_average,
    plot_reward_curve,
    read_games,
)


def _write_csv(path, returns):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["game", "agent", "return", "length", "wall_s", "success", "cost"])
        for i, r in enumerate(returns):
            writer.writerow([i, i % 2, r, int(r), 0.5 * i, 0, ""])


def test_moving_average_known_values():
    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


def test_first_reaching_needs_a_full_window():
    log = GameLog(np.arange(5), np.array([200.0, 0, 0, 200, 200]), np.arange(5.0), np.zeros(5))
    assert first_reaching(log, 195, window=1) == 0
    assert first_reaching(log, 130, window=3) == 4  # mean(0, 200, 200) = 133
    assert first_reaching(log, 150, window=3) is None
    assert first_reaching(log, 0, window=10) is None


def test_plot_and_cli(tmp_path, capsys):
    _write_csv(tmp_path / "games.csv", [10.0] * 50 + [200.0] * 150)
    log = read_games(tmp_path)
    assert len(log) == 200 and log.wall_s[-1] == pytest.approx(99.5)
    png = plot_reward_curve(tmp_path, tmp_path / "curve.png", window=100, threshold=195)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(tmp_path), "--threshold", "195"]) == 0
    out = capsys.readouterr().out
    assert "200 games" in out
    # games 48..147 hold two 10s and ninety-eight 200s: mean 196.2, the first window >= 195
    assert "reached 195 after 148 games (73.5 s)" in out
    assert (tmp_path / "reward_curve.png").exists()


def test_cli_missing_log_is_an_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_success_is_read_and_plotted(tmp_path, capsys):
    with (tmp_path / "games.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["game", "agent", "return", "length", "wall_s", "success", "cost"])
        for i in range(10):
            writer.writerow([i, 0, 1.0, 5, float(i), int(i >= 6), ""])
    log = read_games(tmp_path)
    assert log.success.tolist() == [0.0] * 6 + [1.0] * 4
    assert main(["plot", str(tmp_path), "--success", "--window", "4"]) == 0
    png = tmp_path / "reward_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
