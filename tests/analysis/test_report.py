"""The HTML report and the `nasfpn show` / `nasfpn report` commands."""

import base64
import json
import re

import pytest
from analysis_helpers import health_lines, mixed_records, record, reevaluation, write_search

from nasfpn.analysis import load_ledger, report_html, top_k, write_report
from nasfpn.cli import main
from nasfpn.space import NASFPN


def _self_contained(text: str) -> None:
    """Every src/href is a data: URI or an in-page anchor; nothing loads from elsewhere."""
    for attribute, value in re.findall(r'\b(src|href)\s*=\s*["\']([^"\']*)', text):
        assert value.startswith(("data:", "#")), f"{attribute}={value[:60]!r}"
    assert "<link" not in text and "<script" not in text and "url(" not in text
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text):
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mixed(tmp_path):
    return write_search(tmp_path / "mixed", mixed_records(), health=health_lines(9))


def test_report_of_a_search_with_failures_and_duplicates(mixed) -> None:
    text = report_html(mixed, k=3)
    _self_contained(text)
    best = top_k(load_ledger(mixed), 3)
    for key in best["key"]:
        assert key in text
    assert text.index(best["key"][0]) < text.index(best["key"][1]) < text.index(best["key"][2])
    assert "Top 3 architectures" in text
    # 1 table of top-k, 3 drawings; curves: rewards, unique, 2 Pareto, 3 decisions, failures;
    # health panels: unique_fraction, baseline, policy_entropy, proposals
    assert text.count("<img ") == 3 + 8 + 4
    # the failed trials with their errors, escaped
    assert "RuntimeError: CUDA &lt;out of memory&gt;" in text and "<out of memory>" not in text
    assert "the loss is not finite" in text and "Ray retried it" in text
    # the cost: 550 trial-seconds at 2 CPUs and 0.5 GPU per trial
    assert f"<b>{2 * 550 / 3600:.3f} CPU-hours</b>" in text
    assert f"<b>{0.5 * 550 / 3600:.3f} GPU-hours</b>" in text


def test_report_of_a_search_with_no_success_and_no_extras(tmp_path) -> None:
    failed = record(0, "failed", 0.0, metrics=None, error="boom")
    folder = write_search(tmp_path / "s", [failed], config={})
    text = report_html(folder)
    _self_contained(text)
    assert "no trial has finished successfully yet" in text
    assert "search cost unknown" in text and "search_config.yaml" in text
    assert "no controller.jsonl in this folder" in text
    assert "boom" in text


def test_report_shows_the_reevaluation(tmp_path) -> None:
    t0, t1, t2 = record(0, reward=0.30), record(1, reward=0.25), record(2, reward=0.20)
    extra = [reevaluation(t0, 0.18, 1, 200), reevaluation(t1, 0.24, 1, 200)]
    text = report_html(write_search(tmp_path / "s", [t0, t1, t2, *extra]), k=3)
    _self_contained(text)
    section = text[text.index("<h2>Re-evaluation</h2>") : text.index("<h2>Curves</h2>")]
    assert "top 2 architectures" in section and "2 runs with other seeds" in section
    # rank 1 was search rank 2 (t1), rank 2 was search rank 1 (t0, its lucky 0.30)
    rows = re.findall(r"<tr><td>(\d)</td><td>(\d)</td>", section)
    assert rows == [("1", "2"), ("2", "1")]
    assert "0.3000, 0.1800" in section and "0.2450" in section
    assert "mean reward" in text and "re-evaluated with more seeds come first" in text
    # no re-evaluation: the section says so
    plain = report_html(write_search(tmp_path / "p", [t0, t1]))
    assert "re-evaluated no architecture" in plain


def test_write_report_default_and_given_paths(mixed, tmp_path) -> None:
    assert write_report(mixed) == mixed / "report.html"
    assert (mixed / "report.html").read_text().startswith("<!DOCTYPE html>")
    out = write_report(mixed, tmp_path / "elsewhere" / "r.html", k=1)
    assert out.is_file() and "Top 1 architectures" in out.read_text()


def test_cli_report(mixed, tmp_path, capsys) -> None:
    assert main(["report", str(mixed)]) == 0
    assert capsys.readouterr().out.strip() == str(mixed / "report.html")
    assert main(["report", str(mixed), "--out", str(tmp_path / "r.html"), "--top-k", "2"]) == 0
    assert "Top 2 architectures" in (tmp_path / "r.html").read_text()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/ledger.jsonl' does not exist" in capsys.readouterr().err


def test_cli_show(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["show", "nasfpn"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "nasfpn.png")
    assert (tmp_path / "nasfpn.png").read_bytes()[:4] == b"\x89PNG"
    NASFPN.save(tmp_path / "best_genotype.json", reward=0.4)
    assert main(["show", str(tmp_path / "best_genotype.json")]) == 0
    assert (tmp_path / "best_genotype.png").is_file()
    assert main(["show", "nasfpn", "--out", str(tmp_path / "a.svg"), "--title", "mine"]) == 0
    svg = (tmp_path / "a.svg").read_text()
    assert "<svg" in svg and 'id="node-11"' in svg


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "fpn"], "'fpn' is the plain FPN neck, not a genotype"),
        (["show", "nasfpn2"], "unknown genotype 'nasfpn2'"),
        (["show", "nasfpn", "--out", "x.jpg"], "use one of .png, .svg"),
    ],
)
def test_cli_show_errors(argv, message, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_report_of_a_real_search(tiny_search, tmp_path, capsys) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(tiny_search), "--out", str(out)]) == 0
    text = out.read_text()
    _self_contained(text)
    for key in top_k(load_ledger(tiny_search), 5)["key"]:
        assert key in text
    assert "CPU-hours" in text and "policy_entropy" in text


def test_report_shows_a_fidelity_study_beside_the_search(mixed) -> None:
    reference = [{"name": f"g{i}", "key": f"k{i}", "genotype": {}} for i in range(3)]
    (mixed / "fidelity").mkdir()
    (mixed / "fidelity" / "genotypes.json").write_text(json.dumps({"genotypes": reference}))
    lines = []
    for i, (proxy, retrain) in enumerate(((0.3, 0.5), (0.2, 0.3), (0.1, 0.4))):
        for kind, ap in (("proxy", proxy), ("retrain", retrain)):
            history = [{"epoch": 1, "AP": ap}]
            lines.append({"job": f"{kind}-k{i}-s0", "kind": kind, "key": f"k{i}", "seed": 0,
                          "AP": ap, "status": "ok", "history": history})  # fmt: skip
    (mixed / "fidelity" / "fidelity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    text = report_html(mixed, k=3)
    _self_contained(text)
    section = text[text.index("<h2>Proxy fidelity</h2>") : text.index("<h2>Curves</h2>")]
    # ranks 1, 2, 3 against 1, 3, 2: one discordant pair of three, tau 1/3
    assert "Kendall tau-b <b>0.333</b>" in section and "over 3 architectures" in section
    assert section.count("<img ") == 1 and "g2" in section
