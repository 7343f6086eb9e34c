"""The main job runs end to end: train, evaluate, save, reload, predict."""
from kgraph.demo import main


def test_demo_trains_saves_and_reloads(capsys):
    assert main(["--epochs", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "predictions identical = True" in out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.9
