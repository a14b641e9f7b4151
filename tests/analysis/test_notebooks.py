"""Every notebook runs top to bottom in a real Jupyter kernel against a real (tiny) search."""

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there_and_committed_without_outputs() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"reward_curves.ipynb", "architectures.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tiny_search, monkeypatch) -> None:
    monkeypatch.setenv("NASFPN_SEARCH_DIR", str(tiny_search))  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    # which Python the kernel runs: the project's, the one running these tests
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 4, f"{path.name} showed {len(images)} figures"
    assert str(tiny_search) in "".join(out.get("text", "") for out in outputs)
    assert Path(nb.cells[-1].outputs[0]["text"].strip()) == Path(sys.executable)
