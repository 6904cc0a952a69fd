"""The probe check's figure is drawn from its committed rows alone (``--replot``), as Methods shows it."""

import shutil

from benchmarks import probe_check
from prose_sources import RESULTS


def test_the_figure_is_redrawn_from_the_committed_rows(tmp_path, capsys):
    shutil.copy(RESULTS / "2026-11-29" / "cpu_probe_check" / "probe_check.jsonl", tmp_path)
    assert probe_check.main(["--replot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "probe_check.png").stat().st_size > 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:3] == ["encoder", "probe", "val_auc"] and len(printed) == 7
